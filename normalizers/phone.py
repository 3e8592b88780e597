"""Phone numbers: E.164 for Indonesian and international numbers; short codes and sender
names are not phones."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

# Service short codes that reach us as senders; never a citizen's phone (1708 is LAPOR!).
SHORT_CODES = frozenset({"1708", "112", "110", "113", "118", "119", "14045", "1500", "108"})
_DIGITS = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class PhoneResult:
    e164: str | None  # None when the sender is not a phone number
    kind: str  # mobile | fixed_line | other | short_code | alphanumeric | invalid | empty


# A sender writes again (follow-ups, SMS parts, a backlog of one gateway's numbers) and
# libphonenumber costs ~25 µs a number: the answer, a pure function of the string, is kept.
@functools.lru_cache(maxsize=16_384)
def normalize_phone(raw: str | None, region: str = "ID") -> PhoneResult:
    """`081234567890`, `62 812…`, `+62…` → `+6281234567890`; `1708`, `TELKOMSEL` → not a phone."""
    if not raw or not raw.strip():
        return PhoneResult(None, "empty")
    text = raw.strip()
    compact = _DIGITS.sub("", text)
    if any(ch.isalpha() for ch in compact):
        return PhoneResult(None, "alphanumeric")
    digits = compact.lstrip("+")
    if not digits.isdigit():
        return PhoneResult(None, "invalid")
    if digits in SHORT_CODES or (len(digits) <= 6 and not compact.startswith("+")):
        return PhoneResult(None, "short_code")
    candidate = compact
    # Gateways often drop the '+': "6281234567890" is an international number for Indonesia.
    if not compact.startswith(("+", "0")) and digits.startswith("62") and len(digits) >= 10:
        candidate = "+" + digits
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return PhoneResult(None, "invalid")
    # A number is valid exactly when libphonenumber gives it a type (is_valid_number
    # computes the same type and compares it with UNKNOWN): the type once, not twice.
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return PhoneResult(None, "invalid")
    label = {
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    }.get(kind, "other")
    return PhoneResult(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), label
    )
