"""Phone numbers (normalizers.phone)."""

from __future__ import annotations

import phonenumbers
import pytest

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
