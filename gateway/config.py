"""kanal's configuration: one TOML file plus `KANAL_…` environment overrides, validated once.

Every problem is collected with its key path so `kanal check-config` can list them all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as secrets_module
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger("kanal.config")

OWNER_PATTERN = re.compile(
    r"^(province|kota:\d{2}\.\d{2}|kecamatan:\d{2}\.\d{2}\.\d{2}|"
    r"kelurahan:\d{2}\.\d{2}\.\d{2}\.\d{4}|office:[a-z0-9_]+)$"
)
DEFAULT_OFFICES = {
    "balai_kota": "Balai Kota (pendopo)",
    "biro_pemerintahan": "Biro Pemerintahan",
    "inspektorat": "Inspektorat Provinsi DKI Jakarta",
}
SECTIONS = ("server", "database", "crm", "offices", "channels", "pipeline", "notify")


def check_owner(value: str) -> str:
    if not OWNER_PATTERN.match(value):
        raise ValueError(
            "must be province, kota:NN.NN, kecamatan:NN.NN.NN, "
            "kelurahan:NN.NN.NN.NNNN or office:NAME"
        )
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Strict):
    http: str = "127.0.0.1:8080"
    smtp: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8080"
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_upload_bytes: int = Field(default=20_971_520, gt=0)
    session_secret: str = ""
    session_secret_file: str = ""
    session_idle_minutes: float = Field(default=30.0, gt=0)  # desk/admin sign-in idle timeout
    # Signs the expiring media_url links handed to the CRM; when unset, a random secret
    # is drawn once and kept in the store (kv_state), so every replica signs alike.
    media_secret: str = ""
    media_secret_file: str = ""
    # Per-client rate limits of /signin (GET and POST together) and /track/{ticket}: a
    # token bucket per client address of `burst` requests, refilled at `rate_per_minute`;
    # past it, 429 with Retry-After. `rate_limit_clients` bounds the clients remembered.
    signin_rate_per_minute: float = Field(default=30.0, gt=0)
    signin_burst: int = Field(default=20, ge=1)
    track_rate_per_minute: float = Field(default=60.0, gt=0)
    track_burst: int = Field(default=30, ge=1)
    rate_limit_clients: int = Field(default=10_000, ge=1)

    @field_validator("http")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @field_validator("smtp")
    @classmethod
    def _optional_host_port(cls, value: str) -> str:
        if value:
            parse_host_port(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class DatabaseConfig(Strict):
    url: str = "sqlite:///var/kanal.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value


class CrmConfig(Strict):
    mode: Literal["hold", "open311"] = "hold"
    endpoint: str = ""
    api_key: str = ""
    api_key_file: str = ""
    jurisdiction_id: str = ""
    max_attempts: int = Field(default=12, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout_s: float = Field(default=15.0, gt=0)
    status_poll_interval_s: float = Field(default=300.0, gt=0)
    media_url_ttl_s: int = Field(default=30 * 86400, gt=0)
    # Sent for reports whose category is "unknown" or has no service code of its own.
    default_service_code: str = Field(default="LAIN", min_length=1)
    # Retry policy (crm_client.RetryPolicy) and circuit breaker (crm_client.CircuitBreaker).
    retry_base_s: float = Field(default=5.0, gt=0)
    retry_max_delay_s: float = Field(default=3600.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, ge=0)
    # A replica's claim on a report it is posting; lapses (another replica takes over) if
    # the replica dies. Must outlast one CRM exchange (timeout_s).
    claim_ttl_s: float = Field(default=120.0, gt=0)


class OfficeConfig(Strict):
    name: str


class PipelineConfig(Strict):
    batch_size: int = Field(default=64, ge=1, le=1000)
    # How long the parts of a multipart SMS wait for each other before going on incomplete.
    sms_parts_timeout_s: float = Field(default=600.0, gt=0)
    # A citizen's DM messages within this window become one report.
    conversation_window_s: float = Field(default=120.0, ge=0)
    # Attachments sent as links or platform file ids (gateway/media_fetch.py): attempts
    # before an attachment is marked unavailable, first retry delay, per-fetch timeout.
    media_attempts: int = Field(default=4, ge=1, le=20)
    media_retry_base_s: float = Field(default=2.0, gt=0)
    media_timeout_s: float = Field(default=30.0, gt=0)
    media_concurrency: int = Field(default=4, ge=1, le=64)
    # TEST ONLY: lets media be fetched from loopback addresses (local fakes). Private,
    # link-local and multicast addresses stay refused. Logged as a warning at every start.
    allow_private_media_hosts: bool = False
    claim_ttl_s: float = Field(default=60.0, gt=0)


class ConnectorConfig(Strict):
    enabled: bool = False
    owner: str = "province"
    allow_unsigned: bool = False
    # Hosts attachments may be fetched from ("*.example.com" = any subdomain); none = none.
    media_hosts: list[str] = Field(default_factory=list)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)

    # The names of the secret fields this connector needs to verify what it receives.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()


class SmsTwilioConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("auth_token",)
    auth_token: str = ""
    auth_token_file: str = ""
    account_sid: str = ""
    media_hosts: list[str] = Field(default_factory=lambda: ["api.twilio.com", "*.twiliocdn.com"])
    # Outbound SMS (acknowledgements): REST base URL (tests point it at a local fake) and
    # the sender number when the inbound `To` is not to be used.
    api_base_url: str = "https://api.twilio.com"
    from_number: str = ""


class SmsVonageConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("signature_secret",)
    signature_secret: str = ""
    signature_secret_file: str = ""
    signature_method: Literal["md5hash", "md5", "sha1", "sha256", "sha512"] = "md5hash"
    api_key: str = ""
    api_secret: str = ""
    api_secret_file: str = ""
    api_base_url: str = "https://rest.nexmo.com"  # outbound SMS API (tests: a local fake)
    from_number: str = ""  # sender id for outbound SMS; default: the number the citizen texted


class SecretConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret",)
    secret: str = ""
    secret_file: str = ""


class SmsKannelConfig(SecretConfig):
    sendsms_url: str = ""
    sendsms_user: str = ""
    sendsms_password: str = ""
    sendsms_password_file: str = ""


class SmsGenericConfig(SecretConfig):
    # Optional: where kanal POSTs outbound SMS (JSON {"id","to","from","text"}, signed with
    # X-Kanal-Signature over the body with `secret`). Empty: no replies through this gateway.
    reply_url: str = ""


class LaporConfig(SecretConfig):
    poll_endpoint: str = ""
    poll_token: str = ""
    poll_token_file: str = ""
    poll_interval_s: float = Field(default=300.0, gt=0)
    field_mapping: dict[str, str] = Field(default_factory=dict)


class MetaAccount(Strict):
    channel: Literal["facebook", "instagram"]
    owner: str = "province"
    page_token: str = ""
    page_token_file: str = ""

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)


class MetaConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("app_secret", "verify_token")
    verify_token: str = ""
    verify_token_file: str = ""
    app_secret: str = ""
    app_secret_file: str = ""
    accounts: dict[str, MetaAccount] = Field(default_factory=dict)
    media_hosts: list[str] = Field(
        default_factory=lambda: ["*.fbcdn.net", "*.cdninstagram.com", "lookaside.fbsbx.com"]
    )
    graph_url: str = "https://graph.facebook.com"  # Send API base (tests: a local fake)


class TwitterConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("consumer_secret",)
    consumer_key: str = ""
    consumer_secret: str = ""
    consumer_secret_file: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    access_token_secret_file: str = ""
    bearer_token: str = ""
    bearer_token_file: str = ""
    user_id: str = ""
    mode: Literal["webhook", "polling"] = "webhook"
    poll_interval_s: float = Field(default=60.0, gt=0)
    media_hosts: list[str] = Field(
        default_factory=lambda: ["pbs.twimg.com", "video.twimg.com", "ton.twitter.com"]
    )


class TelegramConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")
    bot_token: str = ""
    bot_token_file: str = ""
    secret_token: str = ""
    secret_token_file: str = ""
    mode: Literal["webhook", "polling"] = "webhook"
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    # polling: one run long-polls getUpdates for about this long (the scheduler's interval).
    poll_interval_s: float = Field(default=30.0, ge=1)
    # (media_hosts empty = the host of base_file_url, where getFile's files live)


class EmailConfig(ConnectorConfig):
    # Mail arriving by SMTP is accepted only for these recipients; it needs no secret.
    recipients: list[str] = Field(default_factory=list)
    max_message_bytes: int = Field(default=26_214_400, gt=0)
    imap_host: str = ""
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str = ""
    imap_password: str = ""
    imap_password_file: str = ""
    imap_folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    imap_after: Literal["keep", "flag", "move"] = "flag"
    imap_move_to: str = "Processed"
    imap_lookback_days: int = Field(default=0, ge=0)
    imap_poll_interval_s: float = Field(default=60.0, gt=0)
    # imap_after = "flag": the flag set on stored mail ("\\Seen" marks it read for people too).
    imap_flag: str = "$KanalStored"
    # Wait with IMAP IDLE between polls when the server offers it (new mail in about a second).
    imap_idle: bool = True
    imap_timeout_s: float = Field(default=30.0, gt=0)
    smtp_relay: str = ""
    from_address: str = ""


class MediaConfig(ConnectorConfig):
    feeds: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(default=900.0, gt=0)


class ChannelsConfig(Strict):
    sms_twilio: SmsTwilioConfig = Field(default_factory=SmsTwilioConfig)
    sms_vonage: SmsVonageConfig = Field(default_factory=SmsVonageConfig)
    sms_kannel: SmsKannelConfig = Field(default_factory=SmsKannelConfig)
    sms_generic: SmsGenericConfig = Field(default_factory=SmsGenericConfig)
    jaki: SecretConfig = Field(default_factory=SecretConfig)
    lapor: LaporConfig = Field(default_factory=LaporConfig)
    meta: MetaConfig = Field(default_factory=MetaConfig)
    twitter: TwitterConfig = Field(default_factory=TwitterConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)


class NotifyConfig(Strict):
    """Messages back to citizens (gateway/notify.py): acknowledgements and "done" news."""

    language: Literal["id", "en"] = "id"
    ack_enabled: bool = True
    # Channels whose citizens hear when their report is done ([] turns the news off).
    done_channels: list[str] = Field(
        default_factory=lambda: ["sms", "email", "telegram", "facebook", "instagram", "twitter"]
    )
    templates_dir: str = ""  # default: config/notify of the installation
    lookback_days: float = Field(default=7.0, gt=0)  # reports older than this get no ack
    done_lookback_days: float = Field(default=180.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)  # recent reports, and due sends
    scan_interval_s: float = Field(default=30.0, gt=0)  # the whole look-back window, done news
    per_hour: int = Field(default=3, ge=1)  # messages per recipient, counted from `outbound`
    per_day: int = Field(default=10, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=10.0, gt=0)
    retry_max_delay_s: float = Field(default=1800.0, gt=0)
    timeout_s: float = Field(default=15.0, gt=0)
    claim_ttl_s: float = Field(default=60.0, gt=0)  # must outlast one provider exchange
    concurrency: int = Field(default=4, ge=1, le=64)
    meta_window_h: float = Field(default=24.0, gt=0)  # Meta's standard messaging window
    # A send interrupted after it may have reached the provider (crash, lapsed claim, read
    # timeout) is NOT sent again by default: at most once. True: at least once.
    resend_when_unsure: bool = False


class Settings(Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    offices: dict[str, OfficeConfig] = Field(default_factory=dict)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    def office_names(self) -> dict[str, str]:
        return {**DEFAULT_OFFICES, **{k: v.name for k, v in self.offices.items()}}

    def connector(self, name: str) -> ConnectorConfig:
        section: ConnectorConfig = getattr(self.channels, name)
        return section


CONNECTOR_NAMES = tuple(ChannelsConfig.model_fields)


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


# --- loading -------------------------------------------------------------------------------


class ConfigError(Exception):
    """Every problem found in the configuration, each as 'key.path: message'."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class LoadedConfig:
    settings: Settings
    source: str  # the file read, or "built-in defaults"
    embedded_default: bool
    secrets_file: Path | None = None
    warnings: list[str] = field(default_factory=list)
    inline_secret_paths: list[str] = field(default_factory=list)

    def secret(self, connector: str, key: str) -> str | None:
        """A connector's secret from inline/env value or its `<key>_file`; None when unset."""
        return read_secret(self.settings.connector(connector), key)


def read_secret(section: BaseModel, key: str) -> str | None:
    value = getattr(section, key, "")
    if value:
        return str(value)
    path = getattr(section, f"{key}_file", "")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


EMBEDDED_CONNECTORS = ("sms_generic", "jaki", "lapor", "email")


def load_config(path: str | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read the config file (explicit, $KANAL_CONFIG, ./kanal.toml, or none) and the environment."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    chosen = (
        path or env.get("KANAL_CONFIG") or ("kanal.toml" if Path("kanal.toml").exists() else None)
    )
    data: dict[str, Any] = {}
    inline: list[str] = []
    if chosen:
        try:
            data = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{chosen}: no such file"]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{chosen}: not valid TOML: {exc}"]) from None
        inline = _inline_secret_paths(data)
    embedded = chosen is None
    secrets_file: Path | None = None
    if embedded:
        secrets_file = Path("var/secrets.toml")
        data = _embedded_defaults(secrets_file)
    problems += _apply_environment(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems += [f"{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(problems) from None
    problems += _semantic_problems(settings)
    if problems:
        raise ConfigError(problems)
    loaded = LoadedConfig(settings, chosen or "built-in defaults", embedded, secrets_file)
    loaded.inline_secret_paths = inline
    loaded.warnings += [
        f"{p}: secret given inline; prefer the environment or {p}_file" for p in inline
    ]
    for name in CONNECTOR_NAMES:
        section = settings.connector(name)
        if section.enabled and section.allow_unsigned:
            loaded.warnings.append(
                f"channels.{name}: allow_unsigned is set; requests are not verified"
            )
    if settings.pipeline.allow_private_media_hosts:
        loaded.warnings.append(
            "pipeline.allow_private_media_hosts is set (TEST ONLY): "
            "media may be fetched from loopback addresses"
        )
    return loaded


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def _inline_secret_paths(data: dict[str, Any]) -> list[str]:
    found = []
    for name, section in (data.get("channels") or {}).items():
        if not isinstance(section, dict):
            continue
        model = ChannelsConfig.model_fields.get(name)
        fields = getattr(model.annotation, "SECRET_FIELDS", ()) if model else ()
        found += [f"channels.{name}.{key}" for key in fields if section.get(key)]
    crm = data.get("crm") or {}
    if isinstance(crm, dict) and crm.get("api_key"):
        found.append("crm.api_key")
    return found


def _apply_environment(data: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, raw in sorted(env.items()):
        if not name.startswith("KANAL_") or name in ("KANAL_CONFIG", "KANAL_DATABASE_URL"):
            continue
        parts = [p.lower() for p in name[len("KANAL_") :].split("__")]
        if parts[0] not in SECTIONS or len(parts) < 2 or not all(parts):
            problems.append(f"{name}: not a configuration key (KANAL_<SECTION>__<KEY>)")
            continue
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except ValueError as exc:
                problems.append(f"{name}: not valid JSON: {exc}")
                continue
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                problems.append(f"{name}: {'.'.join(parts)} is not a table")
                break
        else:
            target[parts[-1]] = value
    if env.get("KANAL_DATABASE_URL"):
        data.setdefault("database", {})["url"] = env["KANAL_DATABASE_URL"]
    return problems


def _semantic_problems(settings: Settings) -> list[str]:
    problems = []
    offices = settings.office_names()
    for name in CONNECTOR_NAMES:
        section = settings.connector(name)
        owner = section.owner
        if owner.startswith("office:") and owner[7:] not in offices:
            problems.append(f"channels.{name}.owner: unknown office {owner[7:]!r}")
        if not section.enabled or section.allow_unsigned:
            continue
        for key in section.SECRET_FIELDS:
            if key == "secret_token" and getattr(section, "mode", "") == "polling":
                continue  # Telegram getUpdates: no webhook, so no webhook secret
            try:
                present = read_secret(section, key)
            except OSError as exc:
                problems.append(f"channels.{name}.{key}_file: cannot be read: {exc}")
                continue
            if not present:
                problems.append(
                    f"channels.{name}.{key}: required when the connector is enabled "
                    f"(or set {key}_file, or allow_unsigned = true)"
                )
    email = settings.channels.email
    if email.enabled and not email.recipients:
        problems.append("channels.email.recipients: list at least one address")
    if settings.crm.mode == "open311":
        if not settings.crm.endpoint:
            problems.append("crm.endpoint: required when crm.mode = 'open311'")
        elif not re.match(r"^https?://", settings.crm.endpoint):
            problems.append("crm.endpoint: must be an http:// or https:// URL")
        if not (settings.crm.api_key or settings.crm.api_key_file):
            problems.append("crm.api_key: required when crm.mode = 'open311' (or api_key_file)")
    if settings.notify.claim_ttl_s <= settings.notify.timeout_s:
        problems.append("notify.claim_ttl_s: must be longer than notify.timeout_s")
    if settings.crm.claim_ttl_s <= settings.crm.timeout_s:
        problems.append("crm.claim_ttl_s: must be longer than crm.timeout_s")
    if settings.crm.retry_max_delay_s < settings.crm.retry_base_s:
        problems.append("crm.retry_max_delay_s: must be at least crm.retry_base_s")
    for account_id, account in settings.channels.meta.accounts.items():
        if account.owner.startswith("office:") and account.owner[7:] not in offices:
            problems.append(f"channels.meta.accounts.{account_id}.owner: unknown office")
    return problems


def _embedded_defaults(secrets_file: Path) -> dict[str, Any]:
    """The no-configuration default: SQLite under ./var, four connectors with random secrets."""
    stored: dict[str, Any] = {}
    if secrets_file.exists():
        stored = tomllib.loads(secrets_file.read_text(encoding="utf-8"))
    channels: dict[str, Any] = {}
    changed = False
    for name in EMBEDDED_CONNECTORS:
        section: dict[str, Any] = {"enabled": True}
        if name != "email":
            secret = (stored.get(name) or {}).get("secret")
            if not secret:
                secret = secrets_module.token_urlsafe(32)
                stored[name] = {"secret": secret}
                changed = True
            section["secret"] = secret
        channels[name] = section
    channels["email"]["recipients"] = ["pengaduan@localhost"]
    if changed:
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Generated by kanal on first start: the embedded default's webhook secrets."]
        for name in EMBEDDED_CONNECTORS:
            if name in stored:
                lines += [f"[{name}]", f'secret = "{stored[name]["secret"]}"', ""]
        secrets_file.write_text("\n".join(lines), encoding="utf-8")
        secrets_file.chmod(0o600)
    return {"database": {"url": "sqlite:///var/kanal.db"}, "channels": channels}
