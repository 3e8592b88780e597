"""Whether an e-mail's `From:` passed the receiving MTA's checks (RFC 8601 Authentication-Results).

kanal runs no SPF, DKIM or DMARC checks of its own: it believes the verdict of a mail host
the operator trusts (`channels.email.trusted_authserv_ids`), read from the topmost
Authentication-Results header that host added. That host must remove headers claiming its
own authserv-id from incoming mail (RFC 8601 §5), as Postfix/OpenDMARC and the big mailbox
providers do. Pure: header values and settings in, a verdict out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

MAX_HEADERS = 20  # Authentication-Results kept per message, topmost first
MAX_HEADER_CHARS = 4000
# Second-level labels under two-letter country codes that are public suffixes in practice
# (jakarta.go.id, example.co.id, example.co.uk): alignment never stops at one of them.
_PUBLIC_SECOND_LEVEL = frozenset(
    {"ac", "co", "com", "edu", "go", "gov", "mil", "my", "ne", "net", "or", "org", "sch", "web"}
)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    why: str  # e.g. "dmarc=pass by mx.example.id", "no Authentication-Results from a trusted host"


@dataclass(frozen=True, slots=True)
class MethodResult:
    method: str  # spf | dkim | dmarc | …
    result: str  # pass | fail | none | …
    properties: dict[str, str]  # "smtp.mailfrom" → value, "header.d" → value …


def _strip_comments(value: str) -> str:
    """RFC 5322 comments (nested parentheses) removed, quoted strings left alone."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    placeholders: list[str] = []

    def hide(match: re.Match[str]) -> str:
        placeholders.append(match.group(0))
        return f"\x00{len(placeholders) - 1}\x00"

    hidden = _QUOTED.sub(hide, value)
    return [
        re.sub(r"\x00(\d+)\x00", lambda m: placeholders[int(m.group(1))], part)
        for part in hidden.split(separator)
    ]


def parse_authentication_results(value: str) -> tuple[str, list[MethodResult]]:
    """(authserv-id lower-cased, the method results) of one header value; never raises."""
    parts = _split_outside_quotes(_strip_comments(value), ";")
    head = parts[0].split()
    authserv_id = head[0].strip('"').lower() if head else ""
    results: list[MethodResult] = []
    for part in parts[1:]:
        # "dkim = pass header.d=x" → "dkim=pass header.d=x"
        tokens = re.sub(r"\s*=\s*", "=", part.strip()).split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        properties: dict[str, str] = {}
        for token in tokens[1:]:
            key, sep, prop = token.partition("=")
            if sep and "." in key:
                properties.setdefault(key.lower(), prop.strip('"'))
        results.append(MethodResult(method.split("/", 1)[0].lower(), result.lower(), properties))
    return authserv_id, results


def _domain(value: str) -> str:
    """The domain of an address or of a bare domain, lower-cased, without a final dot."""
    return value.rsplit("@", 1)[-1].strip().strip("<>").rstrip(".").lower()


def _organizational(domain: str) -> str:
    labels = domain.split(".")
    keep = (
        3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _PUBLIC_SECOND_LEVEL else 2
    )
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment, approximated without the public suffix list: the same
    organizational domain (last two labels, three under `co.id`-like suffixes)."""
    if not domain or not from_domain:
        return False
    return domain == from_domain or _organizational(domain) == _organizational(from_domain)


def sender_verified(
    headers: Sequence[str], from_address: str, trusted_authserv_ids: Collection[str]
) -> Verdict:
    """Whether `from_address` passed DMARC, or SPF or DKIM aligned with its domain, according
    to the topmost Authentication-Results header of a trusted host (`headers` topmost first)."""
    trusted = {t.strip().lower() for t in trusted_authserv_ids if t.strip()}
    if not trusted:
        return Verdict(False, "no trusted authserv-id configured")
    from_domain = _domain(from_address) if "@" in from_address else ""
    if not from_domain:
        return Verdict(False, "no From address")
    for value in headers[:MAX_HEADERS]:
        authserv_id, results = parse_authentication_results(value[:MAX_HEADER_CHARS])
        if authserv_id not in trusted:
            continue
        for r in results:
            if r.result != "pass":
                continue
            if r.method == "dmarc":
                header_from = r.properties.get("header.from")
                if header_from is None or _domain(header_from) == from_domain:
                    return Verdict(True, f"dmarc=pass by {authserv_id}")
            elif r.method == "spf":
                checked = r.properties.get("smtp.mailfrom") or ""
                if aligned(_domain(checked), from_domain):
                    return Verdict(True, f"spf=pass aligned by {authserv_id}")
            elif r.method == "dkim":
                signer = r.properties.get("header.d") or r.properties.get("header.i") or ""
                if aligned(_domain(signer), from_domain):
                    return Verdict(True, f"dkim=pass aligned by {authserv_id}")
        return Verdict(False, f"no aligned pass from {authserv_id}")
    return Verdict(False, "no Authentication-Results from a trusted host")
