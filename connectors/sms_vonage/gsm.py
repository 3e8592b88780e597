"""The GSM 03.38 alphabet: whether a text fits a 160-character SMS or goes as UCS-2."""

from __future__ import annotations

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ!\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    """Whether the text fits the GSM 03.38 alphabet (else it goes as UCS-2: 70 per SMS)."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text)
