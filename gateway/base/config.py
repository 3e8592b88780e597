"""kanal's configuration: one TOML file plus `KANAL_…` environment overrides, validated once.

Every problem is collected with its key path so `kanal check-config` can list them all.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as secrets_module
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from connectors import BY_SECTION
from connectors.base import Secrets
from connectors.spec import ConnectorConfig, Strict, read_secret
from gateway.base.config_values import (
    email_problem,
    host_port_problem,
    host_problem,
    network_problem,
    strict_booleans,
    url_problem,
)
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
        if (problem := host_port_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("smtp")
    @classmethod
    def _optional_host_port(cls, value: str) -> str:
        if value and (problem := host_port_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if (problem := url_problem(value)) is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        found = [problem for net in value if (problem := network_problem(net)) is not None]
        if found:
            raise ValueError("; ".join(found))
        return value


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


class LogConfig(Strict):
    """How log lines look (gateway/base/logs.py)."""

    # "json": one JSON object per line (time, level, logger, message, request_id).
    format: Literal["text", "json"] = "text"


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
    log: LogConfig = Field(default_factory=LogConfig)

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
    from_environment: dict[str, str] = {}
    problems += _apply_environment(data, env, from_environment)
    problems += strict_booleans(Settings, data, from_environment)
    settings, invalid = _validated(data)
    problems += invalid + _address_problems(settings) + _semantic_problems(settings)
    if problems:
        raise ConfigError([_named(problem, from_environment) for problem in problems])
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


def _validated(data: dict[str, Any]) -> tuple[Settings, list[str]]:
    """The settings, with every section (every connector, every office) that does not
    validate reported and left at its defaults, so the others are still checked."""
    problems: list[str] = []
    for _ in range(3):  # the second pass has nothing left to refuse
        try:
            return Settings.model_validate(data), problems
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{_loc(err['loc'])}: {err['msg'].removeprefix('Value error, ')}")
                _drop(data, err["loc"])
    return Settings(), problems


def _drop(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    section = str(loc[0]) if loc else ""
    table = data.get(section)
    if section in ("channels", "offices") and len(loc) > 1 and isinstance(table, dict):
        table.pop(str(loc[1]), None)
    else:
        data.pop(section, None)


def _named(problem: str, from_environment: Mapping[str, str]) -> str:
    """A problem with a value from the environment names the variable that gave it."""
    path, sep, message = problem.partition(": ")
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        variable = from_environment.get(".".join(parts[:end]))
        if variable is not None and sep:
            where = f" ({path})" if end < len(parts) else ""
            return f"{variable}{where}: {message}"
    return problem


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


def _apply_environment(
    data: dict[str, Any], env: Mapping[str, str], origins: dict[str, str] | None = None
) -> list[str]:
    """Lay `KANAL_<SECTION>__<KEY>` values over the file's; `origins` learns which key path
    each variable set, so a problem with it can name the variable."""
    problems = []
    origins = {} if origins is None else origins
    for name, raw in sorted(env.items()):
        if not name.startswith("KANAL_") or name in ("KANAL_CONFIG", "KANAL_DATABASE_URL"):
            continue
        parts = [p.lower() for p in name[len("KANAL_") :].split("__")]
        if parts[0] not in SECTIONS or len(parts) < 2 or not all(parts):
            problems.append(f"{name}: not a configuration key (KANAL_<SECTION>__<KEY>)")
            continue
        value: Any = raw
        if raw.startswith(("[", "{")):
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
            origins[".".join(parts)] = name
    if env.get("KANAL_DATABASE_URL"):
        data.setdefault("database", {})["url"] = env["KANAL_DATABASE_URL"]
        origins["database.url"] = "KANAL_DATABASE_URL"
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


def _address_problems(settings: Settings) -> list[str]:
    """Addresses that are not addresses: URLs, e-mail addresses, hosts and host:port."""
    found: list[tuple[str, str | None]] = []
    if settings.crm.endpoint:
        found.append(("crm.endpoint", url_problem(settings.crm.endpoint)))
    for name in SECTION_NAMES:
        for key, value in settings.connector(name):
            where = f"channels.{name}.{key}"
            if not value:
                continue
            if key.endswith(("_url", "_endpoint")):
                found.append((where, url_problem(value)))
            elif key == "feeds":
                found += [(f"{where}.{i}", url_problem(url)) for i, url in enumerate(value)]
            elif key == "recipients":
                found += [(f"{where}.{i}", email_problem(to)) for i, to in enumerate(value)]
            elif key == "from_address":
                found.append((where, email_problem(value)))
            elif key == "imap_host":
                found.append((where, host_problem(value)))
            elif key == "smtp_relay":
                found.append((where, host_port_problem(value)))
    return [f"{where}: {problem}" for where, problem in found if problem is not None]


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
    """The no-configuration default: SQLite under ./var, four connectors with random secrets.

    The secrets are drawn once into `secrets_file` and each also written alone to
    `var/secrets/<connector>`, which the default reads as `secret_file`: the same keys in a
    kanal.toml (config/kanal.default.toml is this default as a file) keep them working."""
    stored: dict[str, Any] = {}
    secrets_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # var/, private
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
            alone = secrets_file.parent / "secrets" / name
            _write_private(alone, secret + "\n")
            section["secret_file"] = alone.as_posix()
        channels[name] = section
    channels["email"]["recipients"] = ["pengaduan@localhost"]
    if changed:
        lines = ["# Generated by kanal on first start: the embedded default's webhook secrets."]
        for name in EMBEDDED_CONNECTORS:
            if name in stored:
                lines += [f"[{name}]", f'secret = "{stored[name]["secret"]}"', ""]
        _write_private(secrets_file, "\n".join(lines))
    return {"database": {"url": "sqlite:///var/kanal.db"}, "channels": channels}


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a 0600 file, unless it already says exactly that."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    create_private_file(path)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
