"""People who sign in to /desk and /admin: accounts, password hashes, sessions, lockout,
and what the `kanal user` commands do.

Passwords are hashed with scrypt (n=2**14, r=8, p=1, 16-byte salt per user), stored as
`scrypt$16384$8$1$<salt b64>$<hash b64>` so the cost can be raised later. Sessions live in
the `sessions` table under the sha256 of the random id the cookie carries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store import Store
from gateway.store.schema import sessions, users

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # scrypt hashes anything, but a megabyte "password" is an attack
LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
SESSION_MAX_HOURS = 12  # absolute lifetime, whatever the activity
ROLES = ("admin", "viewer", "officer")

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


# --- password hashes ----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the self-describing hash; malformed hashes never match."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(_unb64(expected)),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


# Verified against when the name is unknown, so an unknown user costs the same scrypt run.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def password_problem(password: str) -> str | None:
    """Why a new password is refused, in Bahasa Indonesia; None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Kata sandi minimal {MIN_PASSWORD_LENGTH} karakter."
    if len(password) > MAX_PASSWORD_LENGTH:
        return "Kata sandi terlalu panjang."
    return None


# --- accounts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    role: str
    scope: str


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in attempt: `person` on success, else `reason`."""

    person: Person | None
    reason: str | None = None  # bad_credentials | locked
    locked_until: datetime | None = None


async def create_user(store: Store, name: str, password: str, role: str, scope: str) -> Person:
    """Raises ValueError when the name is taken or the password too weak."""
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    encoded = await asyncio.to_thread(hash_password, password)
    try:
        async with store.write() as conn:
            result = await conn.execute(
                users.insert().values(
                    name=name,
                    password_hash=encoded,
                    role=role,
                    scope=scope,
                    created_at=store.clock(),
                    failed_logins=0,
                )
            )
            user_id = result.inserted_primary_key[0]  # type: ignore[index]
    except IntegrityError:
        raise ValueError(f"a person named {name!r} exists already") from None
    return Person(int(user_id), name, role, scope)


@dataclass(frozen=True, slots=True)
class Account:
    """A person as `kanal user list` shows them (never their password hash)."""

    name: str
    role: str
    scope: str
    state: str  # active | locked | disabled
    created_at: datetime
    last_sign_in_at: datetime | None


async def list_users(store: Store) -> list[Account]:
    now = store.clock()
    async with store.read() as conn:
        rows = (
            (
                await conn.execute(
                    select(
                        users.c.name,
                        users.c.role,
                        users.c.scope,
                        users.c.created_at,
                        users.c.disabled_at,
                        users.c.locked_until,
                        users.c.last_sign_in_at,
                    ).order_by(users.c.name)
                )
            )
            .mappings()
            .all()
        )
    return [
        Account(
            row["name"],
            row["role"],
            row["scope"],
            "disabled"
            if row["disabled_at"] is not None
            else "locked"
            if row["locked_until"] is not None and row["locked_until"] > now
            else "active",
            row["created_at"],
            row["last_sign_in_at"],
        )
        for row in rows
    ]


async def set_password(store: Store, name: str, password: str) -> bool:
    """New password; also clears a lockout and ends every session of that person."""
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    encoded = await asyncio.to_thread(hash_password, password)
    async with store.write() as conn:
        row = (await conn.execute(select(users.c.id).where(users.c.name == name))).first()
        if row is None:
            return False
        await conn.execute(
            update(users)
            .where(users.c.id == row[0])
            .values(password_hash=encoded, failed_logins=0, locked_until=None)
        )
        await conn.execute(delete(sessions).where(sessions.c.user_id == row[0]))
    return True


async def disable_user(store: Store, name: str) -> bool:
    """Disable a person and end their sessions at once; False when no such active person."""
    async with store.write() as conn:
        row = (
            await conn.execute(
                select(users.c.id).where(users.c.name == name, users.c.disabled_at.is_(None))
            )
        ).first()
        if row is None:
            return False
        await conn.execute(
            update(users).where(users.c.id == row[0]).values(disabled_at=store.clock())
        )
        await conn.execute(delete(sessions).where(sessions.c.user_id == row[0]))
    return True


async def authenticate(store: Store, name: str, password: str) -> SignIn:
    """Check a name and password; 5 failures in a row lock the account 15 minutes.

    One atomic step decides whether a password may be checked at all: a conditional
    UPDATE counts the attempt in advance (as a failure) and sets the lock when it is the
    fifth, so concurrent guesses cannot all slip past a lock check made before any of them
    was counted; a right password then clears the count. The count is not reset by a lock:
    after it lapses, the next failure locks again at once.

    Unknown names, disabled and locked people and wrong passwords answer alike and do the
    same work (one conditional write, one scrypt run); `reason` is for the log only.
    """
    name = name[:128]
    now = store.clock()
    if len(password) > MAX_PASSWORD_LENGTH:
        password = ""  # cannot match any stored password; still costs one scrypt run
    counted = users.c.failed_logins + 1
    async with store.write() as conn:
        row = (
            (
                await conn.execute(
                    update(users)
                    .where(
                        users.c.name == name,
                        users.c.disabled_at.is_(None),
                        or_(users.c.locked_until.is_(None), users.c.locked_until <= now),
                    )
                    .values(
                        failed_logins=counted,
                        locked_until=case(
                            (counted >= LOCK_AFTER_FAILURES, now + timedelta(minutes=LOCK_MINUTES)),
                            else_=None,
                        ),
                    )
                    .returning(
                        users.c.id,
                        users.c.name,
                        users.c.role,
                        users.c.scope,
                        users.c.password_hash,
                        users.c.locked_until,
                    )
                )
            )
            .mappings()
            .first()
        )
        refused = None
        if row is None:
            refused = (
                await conn.execute(select(users.c.locked_until).where(users.c.name == name))
            ).first()
    if row is None:
        await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
        locked = refused is not None and refused[0] is not None and refused[0] > now
        return SignIn(None, "locked" if locked else "bad_credentials")
    ok = bool(password) and await asyncio.to_thread(verify_password, password, row["password_hash"])
    if not ok:
        if row["locked_until"] is not None:
            return SignIn(None, "locked", row["locked_until"])
        return SignIn(None, "bad_credentials")
    async with store.write() as conn:
        await conn.execute(
            update(users)
            .where(users.c.id == row["id"])
            .values(failed_logins=0, locked_until=None, last_sign_in_at=now)
        )
    return SignIn(Person(row["id"], row["name"], row["role"], row["scope"]))


# --- sessions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    person: Person
    csrf_token: str
    id_hash: str


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start_session(store: Store, person: Person) -> tuple[str, str]:
    """A new session for `person`: (the random id for the cookie, its CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = store.clock()
    async with store.write() as conn:
        await conn.execute(
            sessions.insert().values(
                id_hash=session_hash(session_id),
                user_id=person.id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=SESSION_MAX_HOURS),
            )
        )
    return session_id, csrf


async def load_session(store: Store, session_id: str, idle_minutes: float) -> Session | None:
    """The live session with this id, touching its last-seen time; None when it is over
    (idle too long, past its lifetime, signed out, or its person disabled)."""
    id_hash = session_hash(session_id)
    now = store.clock()
    async with store.read() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        sessions.c.csrf_token,
                        sessions.c.last_seen_at,
                        sessions.c.expires_at,
                        users.c.id,
                        users.c.name,
                        users.c.role,
                        users.c.scope,
                        users.c.disabled_at,
                    )
                    .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                    .where(sessions.c.id_hash == id_hash)
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    idle = timedelta(minutes=idle_minutes)
    if (
        row["disabled_at"] is not None
        or row["expires_at"] <= now
        or row["last_seen_at"] + idle <= now
    ):
        await end_session(store, session_id)
        return None
    # Touch at most once a minute: a page's requests should not each take the write lock.
    if now - row["last_seen_at"] >= timedelta(seconds=60):
        async with store.write() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.id_hash == id_hash).values(last_seen_at=now)
            )
    person = Person(row["id"], row["name"], row["role"], row["scope"])
    return Session(person, row["csrf_token"], id_hash)


async def end_session(store: Store, session_id: str) -> None:
    async with store.write() as conn:
        await conn.execute(delete(sessions).where(sessions.c.id_hash == session_hash(session_id)))
