"""The `kanal` command line (CONTRACT §2). Exit 0 ok, 2 bad usage or config, 1 other failures."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway.config import ConfigError, LoadedConfig, load_config
from gateway.private_files import PRIVATE_UMASK

log = logging.getLogger("kanal")


class UsageError(Exception):
    """Bad arguments that argparse could not catch (exit 2)."""


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file (default $KANAL_CONFIG, ./kanal.toml)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanal", description="Citizen complaint intake gateway.")
    parser.add_argument("--log-level", default="INFO", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, text in (
        ("serve", "run everything in one process"),
        ("poll", "run the pollers, pipeline and CRM dispatcher only"),
        ("check-config", "validate the configuration and list every problem"),
    ):
        _config_arg(sub.add_parser(name, help=text))

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    _config_arg(db_sub.add_parser("upgrade", help="apply schema migrations"))

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once, on the last line)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["admin", "viewer", "officer"])
    create.add_argument("--scope", required=True)
    _config_arg(create)
    _config_arg(token_sub.add_parser("list", help="list tokens (never the secret)"))
    revoke = token_sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("--name", required=True)
    _config_arg(revoke)

    ingest = sub.add_parser("ingest", help="replay captured payloads through the intake path")
    ingest.add_argument("--connector", required=True)
    ingest.add_argument("files", nargs="+", metavar="FILE")
    _config_arg(ingest)

    inbox = sub.add_parser("inbox", help="raw messages that failed normalization")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    _config_arg(inbox_sub.add_parser("retry", help="normalize failed raw messages again"))

    EXTRA_COMMANDS.extend_parser(sub)
    return parser


class _ExtraCommands:
    """Commands added by later parts of kanal (users, mbox import, CRM retry)."""

    def __init__(self) -> None:
        self.builders: list[Callable[[Any], None]] = []
        self.handlers: dict[
            str, Callable[[argparse.Namespace, LoadedConfig], Coroutine[Any, Any, int]]
        ] = {}

    def extend_parser(self, sub: Any) -> None:
        for build in self.builders:
            build(sub)


EXTRA_COMMANDS = _ExtraCommands()


def _validate_scope(scope: str, loaded: LoadedConfig) -> None:
    from gateway.config import check_owner

    try:
        check_owner(scope)
    except ValueError as exc:
        raise UsageError(f"--scope: {exc}") from None
    if scope.startswith("office:") and scope[7:] not in loaded.settings.office_names():
        raise UsageError(f"--scope: unknown office {scope[7:]!r}")
    kind, _, code = scope.partition(":")
    if kind in ("kota", "kecamatan", "kelurahan"):
        from normalizers.geo import default_index

        index = default_index()
        known = {
            "kota": index.kota,
            "kecamatan": index.kecamatan,
            "kelurahan": index.by_kelurahan_code,
        }[kind](code)
        if known is None:
            raise UsageError(f"--scope: no {kind} with code {code}")


async def _with_store(loaded: LoadedConfig, work: Callable[[Any], Awaitable[int]]) -> int:
    from gateway.store import Store

    store = Store(loaded.settings.database.url, pool_size=2)
    try:
        await store.migrate()
        return await work(store)
    finally:
        await store.close()


async def cmd_token(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from gateway.auth import hash_token, new_token

    if args.token_command == "create":  # noqa: S105 (a subcommand name)
        _validate_scope(args.scope, loaded)
        token = new_token()

        async def create(store: Any) -> int:
            from sqlalchemy.exc import IntegrityError

            try:
                await store.create_token(args.name, hash_token(token), args.role, args.scope)
            except IntegrityError:
                raise UsageError(f"a token named {args.name!r} exists already") from None
            print(f"token {args.name} ({args.role}, {args.scope}) created; it is shown once:")
            print(token)
            return 0

        return await _with_store(loaded, create)
    if args.token_command == "list":  # noqa: S105 (a subcommand name)

        async def show(store: Any) -> int:
            for row in await store.list_tokens():
                state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
                print(
                    f"{row['name']}\t{row['role']}\t{row['scope']}\t{state}\t"
                    f"created {row['created_at']:%Y-%m-%d %H:%M}"
                )
            return 0

        return await _with_store(loaded, show)

    async def revoke(store: Any) -> int:
        if not await store.revoke_token(args.name):
            print(f"kanal: no active token named {args.name!r}", file=sys.stderr)
            return 1
        print(f"token {args.name} revoked")
        return 0

    return await _with_store(loaded, revoke)


async def cmd_ingest(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from connectors.base import ConnectorError, WireRequest
    from gateway.registry import WEBHOOK_PATHS, _factories
    from gateway.runtime import build_runtime
    from gateway.server import make_pipeline
    from gateway.webhooks import ingest_wire

    names = {*WEBHOOK_PATHS.values(), *INGESTERS}
    if args.connector not in names:
        raise UsageError(f"--connector: one of {', '.join(sorted(names))}")
    runtime = build_runtime(loaded)
    await runtime.store.migrate()
    summary = {"stored": 0, "duplicate": 0, "rejected": 0}
    try:
        for file in args.files:
            body = await asyncio.to_thread(Path(file).read_bytes)
            if args.connector in INGESTERS:
                created = await INGESTERS[args.connector](runtime, body, file)
                summary["stored" if created else "duplicate"] += 1
                continue
            connector = _factories(loaded)[args.connector]()
            path = next(p for p, n in WEBHOOK_PATHS.items() if n == args.connector)
            wire = WireRequest(
                method="POST",
                url=f"{loaded.settings.server.public_url}/webhooks/{path}",
                path=f"/webhooks/{path}",
                query=(),
                headers={"content-type": _guess_type(body)},
                body=body,
                remote="import",
            )
            try:
                _, stored = await ingest_wire(
                    runtime, connector, wire, intake="import", verify=False
                )
            except ConnectorError as exc:
                summary["rejected"] += 1
                print(f"{file}: {exc}", file=sys.stderr)
                continue
            for item in stored:
                summary["stored" if item.created else "duplicate"] += 1
        await make_pipeline(runtime).drain()
    finally:
        await runtime.store.close()
    print(
        f"stored {summary['stored']}, duplicates {summary['duplicate']}, "
        f"rejected {summary['rejected']}"
    )
    return 0 if summary["rejected"] == 0 else 1


# Connectors whose captures are not HTTP bodies (e-mail .eml): name → async ingest function.
INGESTERS: dict[str, Callable[[Any, bytes, str], Awaitable[bool]]] = {}


def _guess_type(body: bytes) -> str:
    stripped = body.lstrip()[:1]
    return "application/json" if stripped in (b"{", b"[") else "application/x-www-form-urlencoded"


async def cmd_inbox(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def retry(store: Any) -> int:
        n = await store.retry_failed_raw()
        from gateway.runtime import build_runtime
        from gateway.server import make_pipeline

        runtime = build_runtime(loaded, store=store)
        await make_pipeline(runtime).drain()
        print(
            f"{n} raw messages queued for normalization again; "
            f"{await store.count_raw('failed')} still failing"
        )
        return 0

    return await _with_store(loaded, retry)


async def cmd_db(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def upgrade(store: Any) -> int:
        print(f"schema at {await store.schema_version()} ({store.dialect})")
        return 0

    return await _with_store(loaded, upgrade)


def cmd_check_config(loaded: LoadedConfig) -> int:
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    print(f"configuration ok ({loaded.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from gateway.server import load_service_modules

    # Everything kanal writes (the SQLite store and its -wal/-shm, var/secrets.toml,
    # backups) holds citizens' data or secrets: readable by its own user only.
    os.umask(PRIVATE_UMASK)
    load_service_modules()  # they add commands (EXTRA_COMMANDS) and ingesters
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.command not in ("serve", "poll", "db"):
        # Short commands (token, user, ingest…) apply migrations quietly.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        loaded = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"kanal: {problem}", file=sys.stderr)
        print(f"kanal: {len(exc.problems)} configuration problem(s)", file=sys.stderr)
        return 2
    try:
        if args.command == "check-config":
            return cmd_check_config(loaded)
        for warning in loaded.warnings:
            log.warning("%s", warning)
        if args.command in ("serve", "poll"):
            if loaded.embedded_default and loaded.secrets_file is not None:
                print(
                    f"kanal: no configuration found; running the embedded default. "
                    f"Webhook secrets are in {loaded.secrets_file.resolve()}",
                    flush=True,
                )
            from gateway.server import run

            asyncio.run(run(loaded, operations_only=args.command == "poll"))
            return 0
        handlers: dict[
            str, Callable[[argparse.Namespace, LoadedConfig], Coroutine[Any, Any, int]]
        ] = {
            "token": cmd_token,
            "ingest": cmd_ingest,
            "inbox": cmd_inbox,
            "db": cmd_db,
            **EXTRA_COMMANDS.handlers,
        }
        return asyncio.run(handlers[args.command](args, loaded))
    except UsageError as exc:
        print(f"kanal: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from gateway.store import StoreUnavailable

        if isinstance(exc, StoreUnavailable):
            print(f"kanal: the store is unreachable: {exc}", file=sys.stderr)
        else:
            log.debug("failure", exc_info=True)
            print(f"kanal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `python -m gateway.cli`: run the imported module's main, whose EXTRA_COMMANDS and
    # INGESTERS are the ones service modules register into (not this __main__ copy's).
    from gateway.cli import main as imported_main

    sys.exit(imported_main())
