"""The `kanal` command line. Exit 0 ok, 2 bad usage or config, 1 other failures.

One module per command group; GROUPS lists them all (nothing registers itself).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from gateway.base.config import ConfigError, LoadedConfig, load_config
from gateway.base.logs import configure_logging
from gateway.cli import (
    check,
    crm,
    db,
    imports,
    inbox,
    ingest,
    learn,
    person,
    purge,
    serve,
    token,
    user,
)
from gateway.cli.common import UsageError
from gateway.store import StoreUnavailable

log = logging.getLogger("kanal")

# command name → the module that builds its parser and runs it
GROUPS: dict[str, ModuleType] = {
    "serve": serve,
    "poll": serve,
    "check-config": check,
    "db": db,
    "token": token,
    "user": user,
    "ingest": ingest,
    "import": imports,
    "inbox": inbox,
    "crm": crm,
    "purge": purge,
    "person": person,
    "learn": learn,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanal", description="Citizen complaint intake gateway.")
    parser.add_argument("--log-level", default="INFO", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(GROUPS.values()):  # each module once, in order
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] and (words[0] == "--config" or words[0].startswith("--config=")):
        print(
            "kanal: --config goes after the subcommand, e.g. kanal check-config --config FILE",
            file=sys.stderr,
        )
        return 2
    args = build_parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    configure_logging(level)  # text until the configuration says otherwise
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
    configure_logging(level, loaded.settings.log.format)
    try:
        if args.command != "check-config":
            for warning in loaded.warnings:
                log.warning("%s", warning)
        run: Callable[[argparse.Namespace, LoadedConfig], Any] = GROUPS[args.command].run
        if inspect.iscoroutinefunction(run):
            coroutine: Awaitable[int] = run(args, loaded)
            return int(asyncio.run(coroutine))  # type: ignore[arg-type]
        return int(run(args, loaded))
    except UsageError as exc:
        print(f"kanal: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except StoreUnavailable as exc:
        print(f"kanal: the store is unreachable: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        log.debug("failure", exc_info=True)
        print(f"kanal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
