"""How each platform's attachments are fetched, as a connector's media.py says it: from
which hosts, with which credentials on its own media host, and how a platform file id
becomes a download URL. The download itself (size caps, no private addresses, redirects)
is the gateway's one guarded fetcher for every channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.base import Secrets

# Headers that authenticate one GET of a URL on a platform's own media host.
Signer = Callable[[str], dict[str, str]]


class MediaRefused(Exception):
    """Fetching this attachment is not allowed or cannot succeed: never retried."""


class MediaFetchError(Exception):
    """A transient failure (network, timeout, 5xx): retried with backoff."""


class MediaGone(MediaRefused):
    """The URL answers 401, 403, 404 or 410: refused, unless it came from a platform's
    file id, whose URL may have lapsed (then the id is resolved once more)."""


@dataclass(frozen=True)
class MediaFile:
    """Where a platform says a file id is downloaded from."""

    url: str
    sha256: str | None = None  # lowercase hex the platform gives: the bytes must match


def configured_hosts(config: Any) -> list[str]:
    return list(config.media_hosts)


@dataclass(frozen=True)
class MediaAccess:
    # The hosts attachments may come from ("*.example.com": any subdomain); none = none.
    hosts: Callable[[Any], list[str]] = configured_hosts
    # (config, secrets, url) → a signer for that URL, only on the platform's own host.
    signer: Callable[[Any, Secrets, str], Signer | None] | None = None
    # (session, config, secrets, file id, max bytes) → the file's download URL (with its
    # sha256 when the platform gives one); asked at every attempt.
    file_url: (
        Callable[[aiohttp.ClientSession, Any, Secrets, str, int], Awaitable[str | MediaFile]] | None
    ) = None
