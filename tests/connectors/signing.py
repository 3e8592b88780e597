"""Sign test payloads the way each platform does, for connector and end-to-end tests.

Written straight from the platforms' documented schemes with the standard library (not
with connectors.base), so that a test signature is an independent witness of the
connector's check: Twilio, Vonage, Kannel's key and kanal's own scheme, Meta, X and
Telegram. Known vectors from twilio-python and the Vonage Python SDK are checked in the
tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

Params = Mapping[str, str | list[str]] | Iterable[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in params.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((name, v) for v in values)
        return pairs
    return list(params)


def twilio_signature(auth_token: str, url: str, params: Params = ()) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of URL + name+value, names and values sorted.

    For GET webhooks and the JSON variant (`bodySHA256` in the URL) pass no params.
    """
    by_name: dict[str, list[str]] = {}
    for name, value in _pairs(params):
        by_name.setdefault(name, []).append(value)
    message = url + "".join(n + v for n in sorted(by_name) for v in sorted(by_name[n]))
    digest = hmac.new(auth_token.encode(), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_body_sha256(body: bytes) -> str:
    """The `bodySHA256` query value Twilio adds to the URL of a JSON webhook."""
    return hashlib.sha256(body).hexdigest()


def vonage_sig(params: Mapping[str, str], secret: str, method: str = "md5hash") -> str:
    """Vonage `sig`: `&k=v` sorted (`&`/`=` in values → `_`), md5hash or HMAC-<method>."""
    message = "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    ).encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(message + secret.encode()).hexdigest()
    return hmac.new(secret.encode(), message, getattr(hashlib, method)).hexdigest()


def vonage_signed(
    params: Mapping[str, str], secret: str, method: str = "md5hash", timestamp: int | None = None
) -> dict[str, str]:
    """`params` plus `timestamp` (now unless given) and their `sig`."""
    signed = {**params, "timestamp": str(int(time.time()) if timestamp is None else timestamp)}
    return {**signed, "sig": vonage_sig(signed, secret, method)}


def kanal_sign(secret: str, body: bytes) -> dict[str, str]:
    """Headers of kanal's own scheme: `X-Kanal-Signature: sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-kanal-signature": f"sha256={digest}"}


def meta_signature(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: sha256= + lowercase hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def twitter_signature(consumer_secret: str, body: bytes) -> str:
    """`x-twitter-webhooks-signature`: sha256= + base64 HMAC-SHA256 of the raw body."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def telegram_headers(secret_token: str) -> dict[str, str]:
    """Headers Telegram sends to a webhook registered with `secret_token`."""
    return {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": secret_token,
    }
