"""Authentication-Results (RFC 8601): kanal believes only the topmost verdict of a mail host
it trusts, and only a pass for the From domain (DMARC, or SPF/DKIM aligned with it)."""

from __future__ import annotations

import pytest

from connectors.email.auth import aligned, parse_authentication_results, sender_verified

MX = "mx.jakarta.go.id"
GMAIL_STYLE = (
    "mx.google.com; dkim=pass header.i=@example.id header.s=s1 header.b=AbC; "
    "spf=pass (google.com: domain of budi@example.id designates 1.2.3.4 as permitted sender) "
    "smtp.mailfrom=budi@example.id; dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.id"
)


def test_a_header_is_read_with_comments_quotes_and_spaces_around_equals() -> None:
    authserv_id, results = parse_authentication_results(
        'MX.Jakarta.go.id 1; spf = pass (a comment; with (nested) parts) smtp.mailfrom="a@b.id";'
        ' dkim=fail reason="bad; sig" header.d=b.id'
    )
    assert authserv_id == MX
    assert [(r.method, r.result) for r in results] == [("spf", "pass"), ("dkim", "fail")]
    assert results[0].properties == {"smtp.mailfrom": "a@b.id"}
    assert results[1].properties == {"header.d": "b.id"}


@pytest.mark.parametrize(
    ("headers", "sender", "verified"),
    [
        ([GMAIL_STYLE], "budi@example.id", True),
        ([f"{MX}; dmarc=pass header.from=example.id"], "Budi@EXAMPLE.id", True),
        ([f"{MX}; spf=pass smtp.mailfrom=bounces.example.id"], "budi@example.id", True),
        ([f"{MX}; dkim=pass header.d=mail.example.co.id"], "budi@example.co.id", True),
        # a pass, but for somebody else's domain: the forger's own
        ([f"{MX}; dkim=pass header.d=evil.example"], "budi@example.id", False),
        ([f"{MX}; spf=pass smtp.mailfrom=x@evil.co.id"], "budi@example.co.id", False),
        ([f"{MX}; dmarc=pass header.from=evil.example"], "budi@example.id", False),
        ([f"{MX}; dmarc=fail header.from=example.id; spf=softfail"], "budi@example.id", False),
        ([f"{MX}; none"], "budi@example.id", False),
        # the right verdict from a host nobody trusts
        (["mx.evil.example; dmarc=pass header.from=example.id"], "budi@example.id", False),
        ([], "budi@example.id", False),
        # a forged header below the trusted host's own: the topmost one decides
        (
            [f"{MX}; dmarc=fail header.from=example.id", f"{MX}; dmarc=pass"],
            "budi@example.id",
            False,
        ),
        # a foreign host's header above the trusted one is skipped
        (
            ["mx.evil.example; dmarc=fail", f"{MX}; dmarc=pass header.from=example.id"],
            "budi@example.id",
            True,
        ),
        ([f"{MX}; dmarc=pass"], "", False),
    ],
)
def test_only_a_trusted_hosts_pass_for_the_from_domain_verifies_the_sender(
    headers: list[str], sender: str, verified: bool
) -> None:
    trusted = [MX, "mx.google.com"]
    assert sender_verified(headers, sender, trusted).verified is verified


def test_nothing_is_verified_when_no_host_is_trusted() -> None:
    verdict = sender_verified([GMAIL_STYLE], "budi@example.id", [])
    assert not verdict.verified and "no trusted" in verdict.why


def test_alignment_never_stops_at_a_public_suffix() -> None:
    assert aligned("a.example.id", "example.id")
    assert not aligned("evil.go.id", "jakarta.go.id")
    assert not aligned("go.id", "jakarta.go.id")
    assert aligned("mail.jakarta.go.id", "jakarta.go.id")
