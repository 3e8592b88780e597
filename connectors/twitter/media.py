"""X media: public images on pbs/video.twimg.com; DM photos on ton.twitter.com need the
account's OAuth 1.0a user context, sent to that host and no other."""

from __future__ import annotations

from urllib.parse import urlsplit

from connectors.media import MediaAccess, Signer
from connectors.spec import Secrets
from connectors.twitter.config import TwitterConfig


def oauth_signer(config: TwitterConfig, secret: Secrets) -> Signer | None:
    """Each GET signed (HMAC-SHA1) with the consumer and access token secrets; None without
    them."""
    from oauthlib.oauth1 import Client  # tweepy's own dependency (requests-oauthlib)

    consumer_secret = secret("consumer_secret")
    token_secret = secret("access_token_secret")
    if not (config.consumer_key and consumer_secret and config.access_token and token_secret):
        return None
    client = Client(
        config.consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=config.access_token,
        resource_owner_secret=token_secret,
    )

    def sign(url: str) -> dict[str, str]:
        _, headers, _ = client.sign(url, http_method="GET")
        return {"Authorization": headers["Authorization"]}

    return sign


def signer(config: TwitterConfig, secret: Secrets, url: str) -> Signer | None:
    if urlsplit(url).hostname != "ton.twitter.com":
        return None
    return oauth_signer(config, secret)


MEDIA = MediaAccess(signer=signer)
