"""deploy/: the systemd units pass `systemd-analyze verify`, the production configuration
is valid with its secrets in files, nginx accepts the shipped site, and a signed Twilio
webhook sent through nginx over TLS reaches a real `kanal serve` — by `public_url`, or by
`trusted_proxies` believing nginx's X-Forwarded-* headers."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from gateway.base.config import load_config
from tests.conftest import ROOT, ServerProcess, free_port, need_binary
from tests.connectors.cases import fixture
from tests.connectors.signing import twilio_signature

DEPLOY = ROOT / "deploy"
KANAL = Path(sys.executable).with_name("kanal")  # the installed entry point, as the units run
UNITS = ("kanal.service", "kanal-web@.service", "kanal-poll.service")
TWILIO_TOKEN = "twilio-auth-token-for-the-proxy-test"


def installed(text: str, tmp_path: Path) -> str:
    """The shipped file as installed here: /opt/kanal is this checkout, /etc/kanal and
    /var/lib/kanal are folders of the test."""
    return (
        text.replace("/opt/kanal/.venv/bin/kanal", str(KANAL))
        .replace("/etc/kanal/", f"{tmp_path}/etc/")
        .replace("/var/lib/kanal", f"{tmp_path}/state")
    )


def install_configuration(tmp_path: Path, **server: str) -> Path:
    """deploy/kanal.toml with its secret files written, [server] keys replaced."""
    secrets = tmp_path / "etc" / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    for name, value in {
        "twilio-auth-token": TWILIO_TOKEN,
        "jaki": "jaki-secret",
        "lapor": "lapor-secret",
    }.items():
        (secrets / name).write_text(value + "\n")
    (tmp_path / "state").mkdir(exist_ok=True)
    lines = []
    for line in installed((DEPLOY / "kanal.toml").read_text(), tmp_path).splitlines():
        key = line.split("=")[0].strip()
        lines.append(f"{key} = {server.pop(key)}" if key in server else line)
    config = tmp_path / "etc" / "kanal.toml"
    config.write_text("\n".join(lines) + "\n")
    assert not server, f"keys not in deploy/kanal.toml: {server}"
    return config


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = need_binary("systemd-analyze", "systemd")
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "\nUser=kanal\n" in text and "\nGroup=kanal\n" in text  # never root
        assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
        assert "--config /etc/kanal/kanal.toml" in text
        name = unit.replace("@.", "@8081.")  # a template is verified as one of its instances
        (tmp_path / name).write_text(installed(text, tmp_path))
    names = [str(tmp_path / unit.replace("@.", "@8081.")) for unit in UNITS]
    result = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # Secrets are in files: no unit carries one.
    for unit in UNITS:
        for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
            name, _, value = line.removeprefix("Environment=").partition("=")
            if line.startswith("Environment="):
                assert not name.endswith(("SECRET", "TOKEN", "PASSWORD", "API_KEY")), line
                if "://" in value:  # a URL with no password in it
                    assert ":" not in value.split("://", 1)[1].split("@")[0], line


def test_systemd_analyze_verify_would_catch_a_broken_unit(tmp_path):
    analyze = need_binary("systemd-analyze", "systemd")
    text = installed((DEPLOY / "systemd" / "kanal.service").read_text(), tmp_path)
    (tmp_path / "kanal.service").write_text(text.replace(str(KANAL), "/nonexistent/kanal"))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "kanal.service")], capture_output=True, text=True
    )
    assert result.returncode != 0 or result.stderr


def test_the_production_configuration_is_valid_with_its_secrets_in_files(tmp_path):
    loaded = load_config(str(install_configuration(tmp_path)), environ={})
    assert loaded.warnings == []  # no secret inline
    assert loaded.secret("sms_twilio", "auth_token") == TWILIO_TOKEN
    assert loaded.settings.server.trusted_proxies == ["127.0.0.1", "::1"]
    # The PostgreSQL units' environment is valid too.
    unit = (DEPLOY / "systemd" / "kanal-web@.service").read_text()
    environ = dict(
        line[len("Environment=") :].replace("%i", "8082").split("=", 1)
        for line in unit.splitlines()
        if line.startswith("Environment=KANAL_")
    )
    on_pg = load_config(str(install_configuration(tmp_path)), environ=environ)
    assert on_pg.settings.database.url.startswith("postgresql://kanal@")
    assert (on_pg.settings.server.http, on_pg.settings.server.smtp) == ("127.0.0.1:8082", "")


def nginx_config(tmp_path: Path, https_port: int, http_port: int, upstream: str) -> Path:
    """The shipped site inside a main configuration that keeps nginx's files in tmp_path,
    with a self-signed certificate made here and the test's ports."""
    subprocess.run(
        [
            need_binary("openssl", "openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(tmp_path / "privkey.pem"),
            "-out",
            str(tmp_path / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "kanal.conf").read_text()
    site = (
        site.replace("/etc/ssl/kanal/", f"{tmp_path}/")
        .replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("    listen [::]:443 ssl http2;\n", "")
        .replace("    listen [::]:80;\n", "")
        .replace("    server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;\n", "")
        .replace("127.0.0.1:8081", upstream)
    )
    (tmp_path / "kanal-site.conf").write_text(site)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / folder).mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {tmp_path}/access.log;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/kanal-site.conf;
}}
"""
    )
    return main


def test_nginx_accepts_the_shipped_site(tmp_path):
    nginx = need_binary("nginx", "nginx")
    main = nginx_config(tmp_path, free_port(), free_port(), "127.0.0.1:8081")
    result = subprocess.run(
        [nginx, "-t", "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def post_twilio(url: str, cafile: Path, signed_url: str | None = None) -> int:
    body = fixture("sms_twilio", "text.txt")
    params = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, signed_url or url, params),
            # A client's own forwarding headers are replaced by nginx's.
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("believed", ["public_url", "trusted_proxies"])
def test_a_signed_twilio_webhook_through_nginx_over_tls_reaches_kanal(tmp_path, believed):
    nginx = need_binary("nginx", "nginx")
    https_port, http_port, kanal_port = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    server = {
        "http": f'"127.0.0.1:{kanal_port}"',
        "smtp": '""',
        # Told the truth, or told nothing useful and trusting nginx to say it.
        "public_url": f'"{public}"' if believed == "public_url" else '"http://127.0.0.1:1"',
        "trusted_proxies": "[]" if believed == "public_url" else '["127.0.0.1"]',
    }
    config = install_configuration(tmp_path, **server)
    kanal = ServerProcess(config, tmp_path, {"KANAL_CONFIG": "", "PATH": os.environ["PATH"]})
    main = nginx_config(tmp_path, https_port, http_port, f"127.0.0.1:{kanal_port}")
    proxy = subprocess.Popen(
        [nginx, "-c", str(main), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kanal.start()
        deadline = time.monotonic() + 10
        url = f"{public}/webhooks/sms/twilio"
        status = 0
        while time.monotonic() < deadline:  # until nginx listens
            try:
                status = post_twilio(url, tmp_path / "fullchain.pem")
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 200, (tmp_path / "error.log").read_text()[-2000:]
        # Signed for another URL than the one called: refused behind the proxy too.
        wrong = post_twilio(url, tmp_path / "fullchain.pem", signed_url="https://evil.example/x")
        assert wrong == 401
    finally:
        proxy.terminate()
        proxy.wait(10)
        kanal.stop()
