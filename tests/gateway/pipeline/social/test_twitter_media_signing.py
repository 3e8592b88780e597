"""X DM photos live on ton.twitter.com behind OAuth 1.0a user context: kanal signs each GET
with the account's secrets (verifiable as the platform checks it), and no other host ever
receives those credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote

from connectors.twitter.config import TwitterConfig
from connectors.twitter.media import oauth_signer

URL = "https://ton.twitter.com/1.1/ton/data/dm/1777/1778/AbCd.jpg?size=large"


def twitter_signer(config: TwitterConfig):  # type: ignore[no-untyped-def]
    return oauth_signer(config, lambda key: getattr(config, key) or None)


def section(**kw) -> TwitterConfig:  # type: ignore[no-untyped-def]
    values = {
        "consumer_key": "ck",
        "consumer_secret": "cs",
        "access_token": "at",
        "access_token_secret": "ats",
    }
    return TwitterConfig(**{**values, **kw})


def oauth_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    pairs = [p.strip().split("=", 1) for p in header[6:].split(",")]
    return {k: unquote(v.strip('"')) for k, v in pairs}


def expected_signature(url: str, params: dict[str, str], consumer: str, token: str) -> str:
    """RFC 5849 §3.4: the signature base string and HMAC-SHA1, written out here."""
    base_url, _, query = url.partition("?")
    all_params = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    all_params += [(k, v) for k, v in params.items() if k != "oauth_signature"]
    normalized = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(all_params)
    )
    base = "&".join(quote(part, safe="~") for part in ("GET", base_url, normalized))
    key = f"{quote(consumer, safe='~')}&{quote(token, safe='~')}".encode()
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()


def test_a_dm_photo_url_is_signed_with_the_accounts_oauth1_user_context():
    sign = twitter_signer(section())
    assert sign is not None
    params = oauth_params(sign(URL)["Authorization"])
    assert params["oauth_consumer_key"] == "ck" and params["oauth_token"] == "at"
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_signature"] == expected_signature(URL, params, "cs", "ats")
    # Each GET gets its own nonce.
    assert oauth_params(sign(URL)["Authorization"])["oauth_nonce"] != params["oauth_nonce"]


def test_without_the_accounts_secrets_nothing_is_signed():
    assert twitter_signer(section(access_token_secret="")) is None
    assert twitter_signer(section(consumer_key="")) is None


async def test_only_ton_twitter_com_and_api_twilio_com_get_credentials(tmp_path):
    from gateway.base.config import load_config
    from gateway.base.runtime import build_runtime
    from gateway.pipeline.media import MediaWorker

    config = tmp_path / "k.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///' + str(tmp_path) + '/k.db"\n'
        '[channels.twitter]\nconsumer_key = "ck"\nconsumer_secret = "cs"\n'
        'access_token = "at"\naccess_token_secret = "ats"\n'
        '[channels.sms_twilio]\naccount_sid = "AC1"\nauth_token = "tok"\n'
    )
    worker = MediaWorker(build_runtime(load_config(str(config), environ={})))
    assert worker.signer_for("twitter", URL) is not None
    assert worker.signer_for("twitter", "https://pbs.twimg.com/media/x.jpg") is None
    assert worker.signer_for("meta", URL) is None
    twilio = worker.signer_for("sms_twilio", "https://api.twilio.com/2010-04-01/x/Media/ME1")
    assert twilio is not None and twilio("https://api.twilio.com/x")["Authorization"].startswith(
        "Basic "
    )
    assert worker.signer_for("sms_twilio", "https://evil.example/x") is None
