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
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from connectors import BY_SECTION
from connectors.base import Secrets
from connectors.spec import ConnectorConfig, Strict, parse_host_port, read_secret
from gateway.store.private_files import create_private_file

log = logging.getLogger("kanal.config")

DEFAULT_OFFICES = {
    "balai_kota": "Balai Kota (pendopo)",
    "biro_pemerintahan": "Biro Pemerintahan",
    "inspektorat": "Inspektorat Provinsi DKI Jakarta",
}
SECTIONS = (
    "server",
    "database",
    "crm",
    "offices",
    "channels",
    "pipeline",
    "notify",
    "retention",
)
C = TypeVar("C", bound=ConnectorConfig)

# [channels.*]: one section per connector of connectors.ALL that has a configuration.
if TYPE_CHECKING:

    class ChannelsConfig(Strict):
        def __getattr__(self, section: str) -> Any: ...

else:
    ChannelsConfig = create_model(
        "ChannelsConfig",
        __base__=Strict,
        **{
            section: (connector.config, Field(default_factory=connector.config))
            for section, connector in BY_SECTION.items()
        },
    )


class ServerConfig(Strict):
    http: str = "127.0.0.1:8080"
    smtp: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8080"
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_upload_bytes: int = Field(default=20_971_520, gt=0)
    # Slow clients (gateway/slow_clients.py): a request's headers, then its body, must arrive
    # within these; connections past max_connections are refused at once; webhook bodies
    # being read hold at most body_budget_bytes together (beyond 32 KB each), else 503.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    body_budget_bytes: int = Field(default=8_388_608, gt=0)
    session_secret: str = ""
    session_secret_file: str = ""
    session_idle_minutes: float = Field(default=30.0, gt=0)  # desk/admin sign-in idle timeout
    # Signs the expiring media_url links handed to the CRM; when unset, a random secret
    # is drawn once and kept in the store (kv_state), so every replica signs alike.
    media_secret: str = ""
    media_secret_file: str = ""
    # Holder name of this replica's poller leases and claims (gateway/replica.py); empty:
    # drawn once and kept beside the store. Must differ between live replicas.
    replica_id: str = Field(default="", max_length=48)
    # Poller leases last this long unless renewed (every third of it, while the replica
    # lives): the longest a dead replica's pollers wait for another to take them over.
    poller_lease_s: float = Field(default=30.0, ge=1, le=60)
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

    # (media_hosts empty = the host of base_file_url, where getFile's files live)


class NotifyConfig(Strict):
    """Messages back to citizens (gateway/notify.py): acknowledgements and "done" news."""

    language: Literal["id", "en"] = "id"
    ack_enabled: bool = True
    # Channels whose citizens hear when their report is done ([] turns the news off).
    done_channels: list[str] = Field(
        default_factory=lambda: [
            "sms",
            "email",
            "telegram",
            "facebook",
            "instagram",
            "twitter",
            "whatsapp",
        ]
    )
    # The answer to a greeting on a chat (/start, "Get Started", a first "halo"): how to report.
    welcome_text: str = (
        "Halo! Ini layanan pengaduan Pemprov DKI Jakarta. Untuk melapor, tulis keluhan Anda "
        "dengan lokasinya (alamat, atau bagikan lokasi) dan kirim foto bila ada. Kami akan "
        "membalas dengan nomor tiket."
    )
    templates_dir: str = ""  # default: config/notify of the installation
    lookback_days: float = Field(default=7.0, gt=0)  # reports older than this get no ack
    done_lookback_days: float = Field(default=180.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)  # recent reports, and due sends
    scan_interval_s: float = Field(default=30.0, gt=0)  # the whole look-back window, done news
    per_hour: int = Field(default=3, ge=1)  # messages per recipient, counted from `outbound`
    per_day: int = Field(default=10, ge=1)
    ack_per_day: int = Field(default=5, ge=1)  # acknowledgements per recipient a day
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


class RetentionConfig(Strict):
    """Personal data under UU PDP 27/2022 (gateway/store/personal.py, `kanal purge`)."""

    # Days after a report is closed (done or rejected) that its personal data is kept;
    # 0 keeps it for ever. The purge also runs on its own, hourly, on one replica.
    personal_data_days: int = Field(default=730, ge=0)


class LearningConfig(Strict):
    """`kanal learn` on a schedule (gateway/pipeline/learning.py)."""

    # Retrain from admins' decisions this often (one replica at a time); 0: only by command.
    retrain_every_s: float = Field(default=86400.0, ge=0)
    # Fewer labelled reports than this: nothing is trained, the keyword rules answer.
    min_decisions: int = Field(default=50, ge=2)


class Settings(Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    offices: dict[str, OfficeConfig] = Field(default_factory=dict)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)

    def office_names(self) -> dict[str, str]:
        return {**DEFAULT_OFFICES, **{k: v.name for k, v in self.offices.items()}}

    def connector(self, section: str) -> ConnectorConfig:
        """The `[channels.<section>]` of a connector (see connectors.BY_SECTION)."""
        found: ConnectorConfig = getattr(self.channels, section)
        return found

    def section(self, kind: type[C]) -> C:
        """The one `[channels.*]` section of this model, typed."""
        for name, connector in BY_SECTION.items():
            if connector.config is kind:
                return cast(C, getattr(self.channels, name))
        raise KeyError(kind.__name__)


SECTION_NAMES = tuple(BY_SECTION)


def secrets_of(section: BaseModel) -> Secrets:
    """The section's secrets by key, as connectors' builders and senders take them."""
    return lambda key: read_secret(section, key)


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
    for name in SECTION_NAMES:
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
        connector = BY_SECTION.get(name)
        fields = connector.config.SECRET_FIELDS if connector and connector.config else ()
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


def area_problem(owner: str) -> str | None:
    """Why an owner or scope like `kota:99.99` names no real area; None when it does."""
    kind, _, code = owner.partition(":")
    if kind not in ("kota", "kecamatan", "kelurahan"):
        return None
    from normalizers.geo import default_index

    index = default_index()
    lookup = {
        "kota": index.kota,
        "kecamatan": index.kecamatan,
        "kelurahan": index.by_kelurahan_code,
    }
    return None if lookup[kind](code) is not None else f"no {kind} with code {code}"


def _semantic_problems(settings: Settings) -> list[str]:
    problems = []
    offices = settings.office_names()
    for name in SECTION_NAMES:
        section = settings.connector(name)
        owner = section.owner
        if owner.startswith("office:") and owner[7:] not in offices:
            problems.append(f"channels.{name}.owner: unknown office {owner[7:]!r}")
        if (problem := area_problem(owner)) is not None:
            problems.append(f"channels.{name}.owner: {problem}")
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
        if (problem := area_problem(account.owner)) is not None:
            problems.append(f"channels.meta.accounts.{account_id}.owner: {problem}")
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
        create_private_file(secrets_file)
        lines = ["# Generated by kanal on first start: the embedded default's webhook secrets."]
        for name in EMBEDDED_CONNECTORS:
            if name in stored:
                lines += [f"[{name}]", f'secret = "{stored[name]["secret"]}"', ""]
        secrets_file.write_text("\n".join(lines), encoding="utf-8")
        secrets_file.chmod(0o600)
    return {"database": {"url": "sqlite:///var/kanal.db"}, "channels": channels}
