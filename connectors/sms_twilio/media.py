"""Twilio MMS media: URLs on api.twilio.com, which may enforce HTTP Basic auth on media (and
redirect to the CDN); the account's credentials go to that host and no other."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from connectors.media import MediaAccess, Signer
from connectors.sms_twilio.config import SmsTwilioConfig
from connectors.spec import Secrets


def signer(config: SmsTwilioConfig, secret: Secrets, url: str) -> Signer | None:
    token = secret("auth_token")
    if urlsplit(url).hostname != "api.twilio.com" or not (config.account_sid and token):
        return None
    basic = aiohttp.encode_basic_auth(config.account_sid, token)
    return lambda _url: {"Authorization": basic}


MEDIA = MediaAccess(signer=signer)
