"""`kanal check-config`'s truth: every problem of a file in one pass, booleans that are
booleans, addresses that are addresses, problems from the environment named by their
variable, and the embedded default's secrets kept when a kanal.toml takes over."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.base.config import load_config
from gateway.base.config_values import (
    email_problem,
    host_port_problem,
    network_problem,
    url_problem,
)
from tests.gateway.cli.test_config_cli import problems_of

ROOT = Path(__file__).resolve().parents[3]


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    return problems_of(text, environ, tmp_path)


def test_one_pass_lists_invalid_values_and_semantic_problems_of_every_section(tmp_path):
    found = problems(
        tmp_path,
        """
[server]
http = "nowhere"
[crm]
mode = "open311"
timeout_s = 200
[channels.sms_twilio]
enabled = true
owner = "kota:99.99"
[channels.jaki]
owner = "nobody"
[channels.lapor]
enabled = true
[offices.pusat]
nama = "typo"
""",
    )
    paths = sorted(p.split(":")[0] for p in found)
    assert paths == [
        "channels.jaki.owner",  # invalid value: its connector is checked as a default
        "channels.lapor.secret",  # semantic, in the same pass as the invalid values
        "channels.sms_twilio.auth_token",
        "channels.sms_twilio.owner",
        "crm.api_key",
        "crm.claim_ttl_s",
        "crm.endpoint",
        "offices.pusat.nama",
        "offices.pusat.name",
        "server.http",
    ], found


@pytest.mark.parametrize("written", ['"yes"', '"true"', "1", "0"])
def test_a_boolean_in_the_file_must_be_a_toml_boolean(tmp_path, written):
    found = problems(tmp_path, f"[channels.jaki]\nenabled = {written}\nallow_unsigned = true\n")
    assert len(found) == 1 and found[0].startswith("channels.jaki.enabled: must be true or false")
    assert "unquoted" in found[0]


def test_booleans_from_the_environment_say_true_or_false_and_are_named_when_not(tmp_path):
    path = tmp_path / "kanal.toml"
    path.write_text("[channels.jaki]\nallow_unsigned = true\n")
    loaded = load_config(str(path), environ={"KANAL_CHANNELS__JAKI__ENABLED": "true"})
    assert loaded.settings.channels.jaki.enabled is True
    off = load_config(str(path), environ={"KANAL_CHANNELS__JAKI__ENABLED": "FALSE"})
    assert off.settings.channels.jaki.enabled is False
    found = problems(
        tmp_path, "[channels.jaki]\n", environ={"KANAL_CHANNELS__JAKI__ENABLED": "yes"}
    )
    assert found == ["KANAL_CHANNELS__JAKI__ENABLED: must be true or false, not 'yes'"]


def test_an_empty_environment_value_is_an_empty_string_not_json(tmp_path):
    path = tmp_path / "kanal.toml"
    path.write_text("")
    loaded = load_config(str(path), environ={"KANAL_SERVER__SMTP": ""})  # the listener off
    assert loaded.settings.server.smtp == ""


def test_a_problem_from_the_environment_names_its_variable(tmp_path):
    found = problems(
        tmp_path,
        "",
        environ={
            "KANAL_SERVER__HTTP": "nowhere",
            "KANAL_SERVER__TRUSTED_PROXIES": '["10.0.0.0/8", "proxy.local"]',
            "KANAL_DATABASE_URL": "mysql://db/kanal",
            "KANAL_CRM__CONCURRENCY": "lots",
        },
    )
    assert sorted(found) == [
        "KANAL_CRM__CONCURRENCY: Input should be a valid integer, unable to parse string as an "
        "integer",
        "KANAL_DATABASE_URL: must start with sqlite:// or postgresql://",
        "KANAL_SERVER__HTTP: 'nowhere' is not host:port",
        "KANAL_SERVER__TRUSTED_PROXIES: 'proxy.local' is not an IP address or network "
        "(like 10.0.0.0/8)",
    ]
    # A file's own problems keep their key path.
    assert problems(tmp_path, '[server]\nhttp = "x"\n') == ["server.http: 'x' is not host:port"]


BAD_ADDRESSES = [
    ("server", "http", '"8080"', "server.http"),
    ("server", "http", '"kanal .local:80"', "server.http"),
    ("server", "http", '"::1:8080"', "server.http"),
    ("server", "smtp", '"127.0.0.1:99999"', "server.smtp"),
    ("server", "public_url", '"kanal.jakarta.go.id"', "server.public_url"),
    ("server", "public_url", '"https://"', "server.public_url"),
    ("server", "public_url", '"https://kanal.jakarta.go.id:http"', "server.public_url"),
    ("server", "trusted_proxies", '["10.0.0.0/33"]', "server.trusted_proxies"),
    ("crm", "endpoint", '"ftp://crm.example/open311/v2"', "crm.endpoint"),
    ("channels.email", "recipients", '["pengaduan"]', "channels.email.recipients.0"),
    ("channels.email", "from_address", '"Kanal <a@b.id>"', "channels.email.from_address"),
    ("channels.email", "smtp_relay", '"relay.local"', "channels.email.smtp_relay"),
    ("channels.email", "imap_host", '"imap host"', "channels.email.imap_host"),
    ("channels.sms_generic", "reply_url", '"/answers"', "channels.sms_generic.reply_url"),
    ("channels.lapor", "poll_endpoint", '"lapor.go.id/api"', "channels.lapor.poll_endpoint"),
    ("channels.media", "feeds", '["https://ok.example/a.rss", "news"]', "channels.media.feeds.1"),
]


@pytest.mark.parametrize(("section", "key", "value", "path"), BAD_ADDRESSES)
def test_an_address_that_is_not_an_address_is_refused(tmp_path, section, key, value, path):
    found = problems(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert [p.split(": ")[0] for p in found] == [path], found


def test_real_addresses_pass(tmp_path):
    assert (
        problems(
            tmp_path,
            """
[server]
http = "[::1]:8080"
smtp = "0.0.0.0:25"
public_url = "https://kanal.jakarta.go.id/kanal/"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]
[crm]
endpoint = "https://crm.example:8443/open311/v2"
[channels.email]
recipients = ["pengaduan@localhost", "dki@jakarta.go.id"]
from_address = "balasan@jakarta.go.id"
smtp_relay = "mail.jakarta.go.id:587"
imap_host = "imap.jakarta.go.id"
""",
        )
        == []
    )


def test_the_value_checks_on_their_own():
    assert host_port_problem("localhost:8080") is None
    assert host_port_problem("[2001:db8::1]:443") is None
    assert host_port_problem("10.0.0.300:80") is not None  # all digits, yet no address
    assert url_problem("http://127.0.0.1:8080") is None
    assert url_problem("http://bad_host name") is not None
    assert url_problem("https://x.example/#top") is not None
    assert network_problem("192.168.0.0/16") is None
    assert email_problem("a@b@c") is not None


def test_a_kanal_toml_copied_from_the_default_keeps_the_generated_secrets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    embedded = load_config(None, environ={})
    assert embedded.embedded_default
    shutil.copy(ROOT / "config" / "kanal.default.toml", tmp_path / "kanal.toml")
    configured = load_config(None, environ={})
    assert configured.source == "kanal.toml" and not configured.embedded_default
    assert configured.settings == embedded.settings  # the default is exactly this file
    for name in ("sms_generic", "jaki", "lapor"):
        secret = configured.secret(name, "secret")
        assert secret and secret == embedded.secret(name, "secret")
        assert f'secret = "{secret}"' in (tmp_path / "var" / "secrets.toml").read_text()
    assert configured.warnings == []  # no secret inline


def test_secrets_toml_stays_the_truth_for_the_files_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load_config(None, environ={})
    (tmp_path / "var" / "secrets" / "jaki").write_text("stale\n")
    again = load_config(None, environ={})
    assert again.secret("jaki", "secret") != "stale"
    assert (tmp_path / "var" / "secrets" / "jaki").stat().st_mode & 0o777 == 0o600
