"""Outbound SMS through Twilio's REST API (acknowledgements and news)."""

from __future__ import annotations

import aiohttp

from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    basic_auth,
    check_status,
    read_json,
    request,
)
from connectors.sms_twilio.config import SmsTwilioConfig
from connectors.spec import Secrets


class TwilioSender:
    """`POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` (Basic AccountSid:AuthToken)."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str, from_number: str):
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not (self.account_sid and self.auth_token):
            raise PermanentSendError("sms_twilio: account_sid and auth_token are not configured")
        sender = self.from_number or str(message.meta.get("from") or "")
        if not sender:
            raise PermanentSendError("sms_twilio: no sender number (from_number or inbound To)")
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        status, body, headers = await request(
            session,
            "twilio",
            "POST",
            url,
            data={"To": message.to, "From": sender, "Body": message.body},
            headers={"Authorization": basic_auth(self.account_sid, self.auth_token)},
        )
        check_status("twilio", status, body, headers)
        sid = read_json("twilio", body).get("sid")
        return str(sid or "")


def sender(config: SmsTwilioConfig, secret: Secrets) -> TwilioSender:
    return TwilioSender(
        config.api_base_url, config.account_sid, secret("auth_token") or "", config.from_number
    )
