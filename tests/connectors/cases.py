"""Recorded fixtures and connector table cases.

Every connector's recorded payloads live in tests/connectors/<connector name>/; a file is
named after the event it shows (`message__text.json`), with the channel first where one
connector serves two (`facebook__message__text.json`). `poll__*` files are records a
poller reads, not webhook bodies.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent


def fixture_dir(connector: str) -> Path:
    """The folder of a connector's recorded fixtures."""
    return FIXTURES / connector


def fixture(connector: str, name: str) -> bytes:
    """A recorded payload of a connector (trailing newline dropped)."""
    return (fixture_dir(connector) / name).read_bytes().rstrip(b"\n")
