"""Normalizers: raw message in, canonical report fields out (pure functions)."""
