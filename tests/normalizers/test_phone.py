"""Phone numbers (normalizers.phone)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.phone import PhoneResult, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("081234567890", PhoneResult("+6281234567890", "mobile")),
        ("+62 812-3456-7890", PhoneResult("+6281234567890", "mobile")),
        ("6281234567890", PhoneResult("+6281234567890", "mobile")),
        ("(021) 5551234", PhoneResult("+62215551234", "fixed_line")),
        ("TELKOMSEL", PhoneResult(None, "alphanumeric")),
        ("1708", PhoneResult(None, "short_code")),
        ("", PhoneResult(None, "empty")),
    ],
)
def test_normalize_phone(raw: str, expected: PhoneResult) -> None:
    assert normalize_phone(raw) == expected


def test_a_sender_seen_again_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    parse = phonenumbers.parse

    def counting(*args: object) -> phonenumbers.PhoneNumber:
        calls.append(args)
        return parse(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(phonenumbers, "parse", counting)
    first = normalize_phone("0812 9876 5432 ")
    again = normalize_phone("0812 9876 5432 ")
    assert first == again == PhoneResult("+6281298765432", "mobile")
    assert len(calls) == 1


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"\A(\+62|62|0)8[0-9]{6,12}\Z"),
        st.from_regex(r"\A(\+62|0)[1-9][0-9]{5,11}\Z"),
        st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"),
    )
)
def test_valid_exactly_when_libphonenumber_says_so(raw: str) -> None:
    found = normalize_phone.__wrapped__(raw)
    digits = raw.lstrip("+")
    candidate = "+" + digits if raw.startswith("62") and len(digits) >= 10 else raw
    try:
        number = phonenumbers.parse(candidate, "ID")
    except phonenumbers.NumberParseException:
        assert found.e164 is None
        return
    if digits in ("1708",) or (len(digits) <= 6 and not raw.startswith("+")):
        return  # short codes are never phones, whatever libphonenumber thinks
    valid = phonenumbers.is_valid_number(number)
    assert (found.e164 is not None) == valid, (raw, found)
    if valid:
        assert found.e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
