"""Configuration (TOML + KANAL_ environment, every problem listed with its key path) and the
command line's exit codes, tokens and embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.base.config import ConfigError, load_config
from tests.connectors.cases import fixture

ROOT = Path(__file__).resolve().parents[3]


def kanal(*args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def problems_of(
    text: str, environ: dict[str, str] | None = None, tmp: Path | None = None
) -> list[str]:
    path = (tmp or Path("/tmp")) / f"kanal-{os.getpid()}.toml"
    path.write_text(text)
    try:
        load_config(str(path), environ=environ or {})
    except ConfigError as exc:
        return exc.problems
    return []


def test_every_problem_is_listed_with_its_key_path(tmp_path):
    problems = problems_of(
        """
[server]
http = "nowhere"
max_body_bytes = -1
[channels.sms_twilio]
enabled = true
owner = "kota:31"
[channels.surprise]
enabled = true
""",
        tmp=tmp_path,
    )
    joined = "\n".join(problems)
    assert "server.http:" in joined and "server.max_body_bytes:" in joined
    assert "channels.sms_twilio.owner:" in joined and "channels.surprise:" in joined
    assert len(problems) >= 4


def test_an_enabled_connector_without_its_secret_is_refused_unless_unsigned(tmp_path):
    problems = problems_of("[channels.jaki]\nenabled = true\n", tmp=tmp_path)
    assert any(p.startswith("channels.jaki.secret:") for p in problems)
    assert (
        problems_of("[channels.jaki]\nenabled = true\nallow_unsigned = true\n", tmp=tmp_path) == []
    )


def test_the_environment_overrides_the_file_and_json_sets_tables(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('[channels.sms_generic]\nenabled = true\nsecret = "from-file"\n')
    loaded = load_config(
        str(path),
        environ={
            "KANAL_CHANNELS__SMS_GENERIC__SECRET": "from-env",
            "KANAL_SERVER__TRUSTED_PROXIES": '["10.0.0.0/8"]',
            "KANAL_DATABASE_URL": "postgresql://kanal@db:5432/kanal",
        },
    )
    assert loaded.secret("sms_generic", "secret") == "from-env"
    assert loaded.settings.server.trusted_proxies == ["10.0.0.0/8"]
    assert loaded.settings.database.url == "postgresql://kanal@db:5432/kanal"
    assert any("inline" in w for w in loaded.warnings)  # the file's inline secret is warned about


def test_a_secret_file_is_read_and_an_unknown_env_key_is_a_problem(tmp_path):
    (tmp_path / "s").write_text("s3cret\n")
    path = tmp_path / "k.toml"
    path.write_text(f'[channels.jaki]\nenabled = true\nsecret_file = "{tmp_path}/s"\n')
    assert load_config(str(path), environ={}).secret("jaki", "secret") == "s3cret"
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), environ={"KANAL_NOPE": "1"})
    assert caught.value.problems == ["KANAL_NOPE: not a configuration key (KANAL_<SECTION>__<KEY>)"]


def test_the_example_config_is_valid(tmp_path):
    example = ROOT / "config" / "kanal.example.toml"
    result = kanal("check-config", "--config", str(example), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # It documents every connector of the contract.
    text = example.read_text()
    for name in (
        "sms_twilio",
        "sms_vonage",
        "sms_kannel",
        "sms_generic",
        "jaki",
        "lapor",
        "meta",
        "twitter",
        "telegram",
        "email",
        "media",
    ):
        assert f"[channels.{name}]" in text


def test_check_config_exits_2_and_lists_problems_on_stderr(tmp_path):
    (tmp_path / "bad.toml").write_text('[server]\nhttp = "x"\n[crm]\nmode = "open311"\n')
    result = kanal("check-config", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "server.http:" in result.stderr
    missing = kanal("check-config", "--config", "missing.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert kanal("no-such-command", cwd=tmp_path).returncode == 2


def test_no_configuration_runs_the_embedded_default_with_generated_secrets(tmp_path):
    result = kanal("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "built-in defaults" in result.stdout
    secrets = (tmp_path / "var" / "secrets.toml").read_text()
    for name in ("sms_generic", "jaki", "lapor"):
        assert f"[{name}]" in secrets
    assert oct((tmp_path / "var" / "secrets.toml").stat().st_mode)[-3:] == "600"
    again = kanal("check-config", cwd=tmp_path)  # the secrets are kept, not drawn anew
    assert again.returncode == 0 and (tmp_path / "var" / "secrets.toml").read_text() == secrets


def test_tokens_are_shown_once_listed_without_secret_and_revoked(tmp_path):
    created = kanal(
        "token",
        "create",
        "--name",
        "admin-menteng",
        "--role",
        "admin",
        "--scope",
        "kelurahan:31.71.06.1001",
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("knl_") and len(token) > 40
    listed = kanal("token", "list", cwd=tmp_path)
    assert "admin-menteng" in listed.stdout and token not in listed.stdout
    db = (tmp_path / "var" / "kanal.db").read_bytes()
    assert token.encode() not in db  # only its hash is stored
    assert (
        kanal(
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "admin",
            "--scope",
            "kota:99.99",
            cwd=tmp_path,
        ).returncode
        == 2
    )  # no such kota
    assert (
        kanal(
            "token",
            "create",
            "--name",
            "admin-menteng",
            "--role",
            "viewer",
            "--scope",
            "province",
            cwd=tmp_path,
        ).returncode
        == 2
    )  # the name is taken
    assert kanal("token", "revoke", "--name", "admin-menteng", cwd=tmp_path).returncode == 0
    assert "revoked" in kanal("token", "list", cwd=tmp_path).stdout
    assert kanal("token", "revoke", "--name", "admin-menteng", cwd=tmp_path).returncode == 1


def test_ingest_replays_a_captured_payload_without_signature_checks(tmp_path):
    capture = tmp_path / "jaki.json"
    capture.write_bytes(fixture("jaki", "geo_with_photos.json"))
    result = kanal("ingest", "--connector", "jaki", str(capture), str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stored 1, duplicates 1: 1 new reports, 0 kept in")
    assert kanal("ingest", "--connector", "nope", str(capture), cwd=tmp_path).returncode == 2


def test_ingest_counts_an_unreadable_payload_as_kept_in_the_inbox_not_rejected(tmp_path):
    (tmp_path / "broken.json").write_text('{"id": "no-text"')
    result = kanal("ingest", "--connector", "jaki", "broken.json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == "stored 1, duplicates 0: 0 new reports, 1 kept in the inbox as failed\n"
    assert "broken.json: kept in the inbox as failed:" in result.stderr
    assert "reject" not in result.stdout + result.stderr


def test_db_upgrade_is_idempotent(tmp_path):
    first = kanal("db", "upgrade", cwd=tmp_path)
    second = kanal("db", "upgrade", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert first.stdout.strip() == second.stdout.strip()


def test_owners_that_name_no_real_area_are_problems(tmp_path):
    problems = problems_of(
        """
[channels.jaki]
owner = "kota:99.99"
[channels.lapor]
owner = "kelurahan:31.71.06.9999"
[channels.sms_generic]
owner = "kecamatan:31.71.06"
""",
        tmp=tmp_path,
    )
    assert "channels.jaki.owner: no kota with code 99.99" in problems
    assert "channels.lapor.owner: no kelurahan with code 31.71.06.9999" in problems
    assert not any(p.startswith("channels.sms_generic.owner") for p in problems)


def test_config_before_the_subcommand_says_where_it_goes(tmp_path):
    result = kanal("--config", "x.toml", "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "--config goes after the subcommand" in result.stderr
