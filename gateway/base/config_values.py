"""What a configuration value must look like (host:port, URLs, networks, e-mail addresses,
booleans), and the walk that holds booleans to TOML's own `true`/`false`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import ip_address, ip_network
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([^@\s]+)$")


def host_problem(host: str) -> str | None:
    """Why `host` is neither a host name nor an IP address; None when it is one."""
    try:
        ip_address(host.strip("[]") if host.startswith("[") else host)
        return None
    except ValueError:
        pass
    if len(host) <= 253 and _HOSTNAME.match(host) and not host.replace(".", "").isdigit():
        return None
    return f"{host!r} is not a host name or an IP address"


def host_port_problem(value: str) -> str | None:
    """Why `value` is not `host:port` (`[::1]:8080` for IPv6); None when it is."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{value!r} is not host:port"
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return f"{value!r} is not host:port (write an IPv6 address in brackets)"
    if (problem := host_problem(host)) is not None:
        return f"{value!r} is not host:port: {problem}"
    return None


def url_problem(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL with a real host; None when it is."""
    if any(ch.isspace() for ch in value):
        return f"{value!r} is not a URL (it has spaces)"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        return f"{value!r} is not an http:// or https:// URL"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return f"{value!r} has a port that is not a port"
    if not parts.hostname or host_problem(parts.hostname) is not None:
        return f"{value!r} has no host name or IP address"
    if parts.fragment:
        return f"{value!r} has a #fragment"
    return None


def network_problem(value: str) -> str | None:
    """Why `value` is neither an IP address nor a network (`10.0.0.0/8`); None when it is."""
    try:
        ip_network(value, strict=False)
        return None
    except ValueError:
        return f"{value!r} is not an IP address or network (like 10.0.0.0/8)"


def email_problem(value: str) -> str | None:
    """Why `value` is not a bare e-mail address (`pengaduan@jakarta.go.id`); None when it is."""
    found = _EMAIL.match(value)
    if found is None or host_problem(found.group(1)) is not None:
        return f"{value!r} is not an e-mail address"
    return None


# --- booleans ------------------------------------------------------------------------------

_FROM_ENVIRONMENT = {"true": True, "false": False, "1": True, "0": False}


def annotation_at(model: type[BaseModel], path: tuple[str, ...]) -> Any:
    """The declared type of the key at `path` in `model` (tables by name, dict values by
    any key); None when the model has no such key."""
    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    return current


def strict_booleans(
    model: type[BaseModel], data: dict[str, Any], from_environment: Mapping[str, str]
) -> list[str]:
    """Hold every boolean key of `data` to a real boolean, in place: TOML must say `true` or
    `false` (pydantic alone would take "yes" or 1); a value from the environment, always
    text, may say true/false/1/0. A refused value is removed, so it is reported once."""
    problems: list[str] = []

    def walk(table: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in list(table.items()):
            here = (*path, str(key))
            annotation = annotation_at(model, here)
            if isinstance(value, dict):
                walk(value, here)
            elif annotation is bool and not isinstance(value, bool):
                dotted = ".".join(here)
                if dotted in from_environment and str(value).lower() in _FROM_ENVIRONMENT:
                    table[key] = _FROM_ENVIRONMENT[str(value).lower()]
                    continue
                hint = "" if dotted in from_environment else " (a TOML boolean, unquoted)"
                problems.append(f"{dotted}: must be true or false{hint}, not {value!r}")
                del table[key]

    walk(data, ())
    return problems
