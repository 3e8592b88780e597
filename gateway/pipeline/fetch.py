"""The one downloader of citizens' attachments, for every channel: only from the channel's
own media hosts, never from a private, loopback, link-local or otherwise non-public address
(every resolved address and every redirect hop is checked), credentials only on the
platform's own host, a streamed size cap, and the type read from the bytes.

Host names are resolved by `GuardedResolver`, which refuses unsafe answers, and aiohttp
connects to exactly the addresses it returned (no second lookup: no DNS rebinding).
Redirects are followed by hand so every hop is checked again.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from connectors.media import MediaFetchError, MediaGone, MediaRefused, Signer
from normalizers.sniff import (
    ALLOWED_UPLOAD_TYPES,
    HTML,
    OCTET_STREAM,
    TEXT,
    sniff_content_type,
)

log = logging.getLogger("kanal.media")

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Never globally routable, whatever a Python version's is_global says of them: NAT64 for
# local use, IPv4-compatible (deprecated), discard-only, documentation, benchmarking.
_NON_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in ("64:ff9b:1::/48", "::/96", "100::/64", "2001:db8::/32", "2001:2::/48")
)

MAX_REDIRECTS = 3


CHUNK = 65536


# What a citizen's attachment may turn out to be: pictures, video, sound, documents.
# Plain text and HTML are not evidence a platform CDN would serve: an error page, a login
# wall or a hostile server. Octet-stream proves nothing.
_REFUSED_TYPES = {HTML, TEXT, OCTET_STREAM, "text/csv"}


class BlockedAddress(OSError):
    """Raised inside aiohttp's connector when a host resolves to a refused address."""


def host_allowed(host: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """`host` matches one of `patterns`: exact names, or `*.domain` for any subdomain."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().strip().rstrip(".")
        if not pattern:
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def address_problem(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why connecting to `address` is refused, or None when it is a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        else:
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                # 6to4, NAT64 and Teredo reach the IPv4 address they carry: judged as it.
                problem = address_problem(str(embedded))
                return f"{problem} (embedded in {ip.compressed})" if problem else None
    if ip.is_unspecified:
        return "non-public address"
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if isinstance(ip, ipaddress.IPv6Address) and (
        ip.is_site_local or any(ip in net for net in _NON_GLOBAL_V6)
    ):
        return "non-public address"
    if ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "non-public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client behind the relay
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def same_origin(url: str, other: str) -> bool:
    """Same scheme, host and port: where credentials for `url` may still be sent."""
    a, b = urlsplit(url), urlsplit(other)
    try:
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False


class GuardedResolver(AbstractResolver):
    """Resolves through `inner` and refuses any answer containing a refused address.

    aiohttp connects to the addresses a resolver returns, so the checked address is the
    one connected to: a second, different DNS answer (rebinding) cannot slip in.
    """

    def __init__(self, *, allow_loopback: bool = False, inner: AbstractResolver | None = None):
        self.allow_loopback = allow_loopback
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        for answer in answers:
            problem = address_problem(answer["host"], allow_loopback=self.allow_loopback)
            if problem:
                raise BlockedAddress(f"{host.rstrip('.')} resolves to a {problem}")
        if not answers:
            raise BlockedAddress(f"{host} does not resolve")
        return answers

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class Fetched:
    data: bytes
    declared_type: str | None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class MediaFetcher:
    """One aiohttp session whose connector only reaches addresses the guard allowed."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float = 30.0,
        allow_loopback: bool = False,
        resolver: AbstractResolver | None = None,
    ):
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.allow_loopback = allow_loopback
        self._resolver = GuardedResolver(allow_loopback=allow_loopback, inner=resolver)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> MediaFetcher:
        connector = aiohttp.TCPConnector(resolver=self._resolver, limit=32, ttl_dns_cache=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            trust_env=False,  # never a proxy from the environment: it would bypass the guard
            headers={"User-Agent": "kanal-media/1"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self, url: str, hosts: list[str] | tuple[str, ...], *, sign: Signer | None = None
    ) -> Fetched:
        """The bytes at `url`; raises MediaRefused (permanent) or MediaFetchError.
        `sign` gives the credentials' headers for one URL of the first host (per hop:
        OAuth 1.0a signs each URL)."""
        assert self._session is not None, "use `async with MediaFetcher(...)`"
        for _hop in range(MAX_REDIRECTS + 1):
            host = self._check_url(url, hosts)
            try:
                async with self._session.get(
                    url,
                    allow_redirects=False,
                    headers=sign(url) if sign is not None else None,
                    auto_decompress=True,
                ) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise MediaRefused(f"HTTP {response.status} without Location")
                        next_url = urljoin(url, location)
                        if not same_origin(url, next_url):
                            # Credentials never follow a redirect to another host, nor from
                            # https to http (they would cross the network in clear).
                            sign = None
                        url = next_url
                        continue
                    if response.status >= 500 or response.status in (408, 425, 429):
                        raise MediaFetchError(f"HTTP {response.status}")
                    if response.status in (401, 403, 404, 410):
                        raise MediaGone(f"HTTP {response.status}")
                    if response.status != 200:
                        raise MediaRefused(f"HTTP {response.status}")
                    if response.content_length is not None and (
                        response.content_length > self.max_bytes
                    ):
                        raise MediaRefused(
                            f"too large: {response.content_length} bytes (limit {self.max_bytes})"
                        )
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise MediaRefused(f"too large: over {self.max_bytes} bytes")
                        chunks.append(chunk)
                    return Fetched(b"".join(chunks), response.headers.get("Content-Type"))
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddress):
                    raise MediaRefused(str(exc.os_error)) from None
                raise MediaFetchError(f"cannot connect to {host}: {exc.os_error}") from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise MediaFetchError(f"{type(exc).__name__}: {exc}"[:300]) from None
        raise MediaRefused(f"more than {MAX_REDIRECTS} redirects")

    def _check_url(self, url: str, hosts: list[str] | tuple[str, ...]) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError as exc:
            raise MediaRefused(f"bad URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise MediaRefused(f"scheme {parts.scheme!r} is not fetched")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise MediaRefused("URL without a host")
        if parts.username or parts.password:
            raise MediaRefused("URL with credentials")
        if not host_allowed(host, hosts):
            raise MediaRefused(f"host {host} is not among the channel's media_hosts")
        if _is_ip_literal(host):
            # aiohttp does not ask the resolver about literal addresses: check them here.
            problem = address_problem(host.strip("[]"), allow_loopback=self.allow_loopback)
            if problem:
                raise MediaRefused(f"{host} is a {problem}")
        return host


def accepted_type(data: bytes, declared: str | None, filename: str | None) -> str:
    """The sniffed type of fetched bytes, or MediaRefused when it is not media."""
    content_type = sniff_content_type(data, declared, filename)
    media = content_type.split("/")[0] in ("image", "video", "audio")
    if content_type in _REFUSED_TYPES or not (media or content_type in ALLOWED_UPLOAD_TYPES):
        raise MediaRefused(f"content is {content_type}, not media")
    return content_type
