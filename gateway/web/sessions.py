"""Signed-in web pages: session cookies, CSRF, page rendering and the sign-in routes.

Reusable by every page for people (desks now, /admin later): `current_user(request)`,
`@require_user(roles)`, `csrf_token(request)`, `check_csrf(request, form)`, `render(...)`.
The cookie carries a random session id plus an HMAC of it; the store keeps only the id's
sha256 (gateway/people.py), so a database leak yields no usable cookie.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from gateway.base.config import read_secret
from gateway.base.runtime import Runtime
from gateway.store import StoreUnavailable
from gateway.web.keys import RUNTIME
from gateway.web.people import (
    Person,
    Session,
    authenticate,
    end_session,
    load_session,
    start_session,
)

log = logging.getLogger("kanal.web")

SESSION_COOKIE = "kanal_session"
SIGNIN_COOKIE = "kanal_signin"  # pre-session CSRF token of the sign-in form
FLASH_COOKIE = "kanal_flash"  # the outcome of a form, told once by the page it redirected to
FLASH_MAX_CHARS = 1500  # a cookie holds about 4 KB
_SESSION_KEY = web.RequestKey("kanal_web_session", object)  # Session | None once loaded
_SECRET_STATE_KEY = "web:session_secret"  # noqa: S105 (a kv_state key, not a secret)


@dataclass(frozen=True)
class SessionSecret:
    """The key that signs session cookies and CSRF tokens, read once per process."""

    value: bytes


DEFAULT_IDLE_MINUTES = 30.0
JAKARTA = ZoneInfo("Asia/Jakarta")
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pages are simple: our own CSS and JS, nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class CsrfError(Exception):
    """A POST that did not come from our own form."""


# --- the signing secret ---------------------------------------------------------------------


async def session_secret(runtime: Runtime) -> bytes:
    """`server.session_secret` (or `_file`); else one generated once and kept in the store,
    so every replica signs alike and restarts keep people signed in."""
    cached = runtime.find(SessionSecret)
    if cached is not None:
        return cached.value
    configured = read_secret(runtime.settings.server, "session_secret")
    if configured:
        secret = configured.encode()
    else:
        stored = await runtime.store.get_state(_SECRET_STATE_KEY)
        if not stored:
            await runtime.store.set_state(_SECRET_STATE_KEY, secrets.token_urlsafe(48))
            # Two replicas racing both write; whichever landed last is what everyone reads.
            stored = await runtime.store.get_state(_SECRET_STATE_KEY)
        secret = str(stored).encode()
    return runtime.keep(SessionSecret(secret)).value


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, purpose: str, value: str) -> str:
    return f"{value}.{_mac(secret, purpose, value)}"


def unsign(secret: bytes, purpose: str, signed: str) -> str | None:
    value, _, mac = signed.rpartition(".")
    if not value or not hmac.compare_digest(mac.encode(), _mac(secret, purpose, value).encode()):
        return None
    return value


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def idle_minutes(runtime: Runtime) -> float:
    return float(getattr(runtime.settings.server, "session_idle_minutes", DEFAULT_IDLE_MINUTES))


def _secure(runtime: Runtime) -> bool:
    return bool(runtime.settings.server.public_url.startswith("https://"))


def set_cookie(response: web.StreamResponse, runtime: Runtime, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="Lax", secure=_secure(runtime)
    )


def clear_cookie(response: web.StreamResponse, runtime: Runtime, name: str) -> None:
    response.del_cookie(name, path="/", secure=_secure(runtime), samesite="Lax")


# --- the signed-in person -------------------------------------------------------------------


async def current_session(request: web.Request) -> Session | None:
    if _SESSION_KEY in request:
        loaded = request[_SESSION_KEY]
        return loaded if isinstance(loaded, Session) else None
    runtime = _runtime(request)
    session: Session | None = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) < 512:
        session_id = unsign(await session_secret(runtime), "session", cookie)
        if session_id:
            session = await load_session(runtime.store, session_id, idle_minutes(runtime))
    request[_SESSION_KEY] = session
    return session


async def current_user(request: web.Request) -> Person | None:
    """The person signed in on this request, or None."""
    session = await current_session(request)
    return session.person if session else None


def require_user(roles: Iterable[str]) -> Callable[[Handler], Handler]:
    """Only people with one of `roles`: others are sent to /signin (GET) or refused."""
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            person = await current_user(request)
            if person is None:
                if request.method in ("GET", "HEAD"):
                    target = quote(request.path_qs, safe="/?=&")
                    raise web.HTTPSeeOther(f"/signin?next={target}")
                return render(
                    request,
                    "error.html",
                    status=401,
                    title="Sesi berakhir",
                    message="Sesi Anda sudah berakhir. Silakan masuk lagi.",
                )
            if person.role not in allowed:
                return render(
                    request,
                    "error.html",
                    status=403,
                    title="Tidak diizinkan",
                    message="Peran Anda tidak dapat membuka halaman ini.",
                )
            return await handler(request)

        return wrapped

    return decorate


def csrf_token(request: web.Request) -> str:
    """The signed-in session's CSRF token (call after current_user)."""
    session = request.get(_SESSION_KEY)
    return session.csrf_token if isinstance(session, Session) else ""


def same_origin(request: web.Request) -> bool:
    """Refuse cross-site form posts: Origin (or Referer) must be us when the browser sends it."""
    runtime = _runtime(request)
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin") or ""
    if not origin:
        referer = request.headers.get("Referer") or ""
        if not referer:
            return True  # old browsers and curl: the token alone decides
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin == "null":
        return False
    ours = {_origin_of(runtime.settings.server.public_url), f"{request.scheme}://{request.host}"}
    return origin.rstrip("/") in ours


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_csrf(request: web.Request, form: Any) -> None:
    """Raise CsrfError unless the form carries this session's token and came from our origin."""
    if not same_origin(request):
        raise CsrfError("cross-origin request")
    expected = csrf_token(request)
    given = str(form.get("csrf") or "") if form is not None else ""
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfError("missing or wrong CSRF token")


# --- messages across a redirect -------------------------------------------------------------


async def set_flash(
    request: web.Request, response: web.StreamResponse, kind: str, text: str
) -> None:
    """Leave `text` ("ok" or "error") for the next page this browser opens."""
    runtime = _runtime(request)
    payload = json.dumps([kind, text[:FLASH_MAX_CHARS]], ensure_ascii=True).encode()
    value = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    set_cookie(response, runtime, FLASH_COOKIE, sign(await session_secret(runtime), "flash", value))


async def take_flash(request: web.Request) -> tuple[str, str] | None:
    """The (kind, text) a redirect left, if it is ours; `forget_flash` on the answer."""
    cookie = request.cookies.get(FLASH_COOKIE, "")
    if not cookie or len(cookie) > 4096:
        return None
    value = unsign(await session_secret(_runtime(request)), "flash", cookie)
    if value is None:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError):
        return None
    return (str(kind), str(text))


def forget_flash(request: web.Request, response: web.StreamResponse) -> None:
    if FLASH_COOKIE in request.cookies:
        clear_cookie(response, _runtime(request), FLASH_COOKIE)


# --- pages ----------------------------------------------------------------------------------


@functools.cache
def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["wib"] = lambda when: when.astimezone(JAKARTA).strftime("%d-%m-%Y %H:%M WIB")
    return env


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    session = request.get(_SESSION_KEY)
    live = session if isinstance(session, Session) else None
    context.setdefault("person", live.person if live else None)
    context.setdefault("csrf", live.csrf_token if live else "")
    context.setdefault("title", "kanal")
    html = templates().get_template(template).render(**context)
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the new page (no resubmission)."""
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def _safe_next(value: str | None, default: str = "/desk") -> str:
    """Only a path on this site: `/desk`, never `//evil.example`, `https://…`, `/\\evil` or
    `/%09/evil.example` (browsers drop tabs and new lines, turning that into `//evil…`):
    one leading slash, then no backslash, control or white-space character at all."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or any(c == "\\" or c.isspace() or not c.isprintable() for c in value)
    ):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# --- sign-in and sign-out -------------------------------------------------------------------


async def signin_page(request: web.Request) -> web.StreamResponse:
    if await current_user(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return await _signin_form(request, next_path=_safe_next(request.query.get("next")))


async def _signin_form(
    request: web.Request,
    *,
    next_path: str,
    name: str = "",
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    runtime = _runtime(request)
    secret = await session_secret(runtime)
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        status=status,
        title="Masuk",
        next_path=next_path,
        name=name,
        error=error,
        signin_csrf=_mac(secret, "signin", token),
    )
    set_cookie(response, runtime, SIGNIN_COOKIE, token)
    return response


async def signin_submit(request: web.Request) -> web.StreamResponse:
    runtime = _runtime(request)
    form = await request.post()
    next_path = _safe_next(str(form.get("next") or ""))
    name = str(form.get("name") or "").strip()[:128]
    password = str(form.get("password") or "")
    secret = await session_secret(runtime)
    pre = request.cookies.get(SIGNIN_COOKIE, "")
    given = str(form.get("csrf") or "")
    if (
        not same_origin(request)
        or not pre
        or not hmac.compare_digest(given.encode(), _mac(secret, "signin", pre).encode())
    ):
        return await _signin_form(
            request,
            next_path=next_path,
            name=name,
            status=403,
            error="Formulir kedaluwarsa. Silakan coba lagi.",
        )
    if not name or not password:
        return await _signin_form(
            request,
            next_path=next_path,
            name=name,
            status=400,
            error="Isi nama pengguna dan kata sandi.",
        )
    outcome = await authenticate(runtime.store, name, password)
    if outcome.person is None:
        # One answer for unknown, disabled and locked people and wrong passwords: which
        # it was would tell a stranger which names exist. The reason is for the log.
        log.info("sign-in refused (%s)", outcome.reason)
        return await _signin_form(
            request,
            next_path=next_path,
            name=name,
            status=401,
            error="Nama pengguna atau kata sandi salah. "
            "Setelah beberapa kali gagal, akun dikunci sementara.",
        )
    session_id, _csrf = await start_session(runtime.store, outcome.person)
    response = redirect(next_path)
    set_cookie(response, runtime, SESSION_COOKIE, sign(secret, "session", session_id))
    clear_cookie(response, runtime, SIGNIN_COOKIE)
    log.info("signed in: user id %s", outcome.person.id)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    runtime = _runtime(request)
    session = await current_session(request)
    if session is not None:
        form = await request.post()
        try:
            check_csrf(request, form)
        except CsrfError:
            return render(
                request,
                "error.html",
                status=403,
                title="Ditolak",
                message="Permintaan keluar ditolak. Muat ulang halaman lalu coba lagi.",
            )
        cookie = request.cookies.get(SESSION_COOKIE, "")
        session_id = unsign(await session_secret(runtime), "session", cookie)
        if session_id:
            await end_session(runtime.store, session_id)
    response = redirect("/signin")
    clear_cookie(response, runtime, SESSION_COOKIE)
    return response


def unavailable_page(handler: Handler) -> Handler:
    """A 503 page (not a 500) while the store cannot be read or written, e.g. a full disk."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            log.warning("%s %s: store unavailable (%s)", request.method, request.path, exc)
            response = render(
                request,
                "error.html",
                status=503,
                title="Layanan sedang sibuk",
                message="Layanan sedang tidak dapat menyimpan data. Silakan coba lagi nanti.",
            )
            response.headers["Retry-After"] = "30"
            return response

    return wrapped


def _too_many(request: web.Request, retry_after: int) -> web.Response:
    return render(
        request,
        "error.html",
        status=429,
        title="Terlalu banyak percobaan",
        message=f"Terlalu banyak permintaan. Silakan coba lagi dalam {retry_after} detik.",
    )


def add_signin_routes(app: web.Application) -> None:
    from gateway.web.rate_limit import limited

    per_client = limited(app[RUNTIME], "signin", _too_many)
    app.router.add_get("/signin", per_client(unavailable_page(signin_page)))
    app.router.add_post("/signin", per_client(unavailable_page(signin_submit)))
    app.router.add_post("/signout", unavailable_page(signout))
