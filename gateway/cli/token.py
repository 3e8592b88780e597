"""`kanal token create|list|revoke`: API tokens (only their hashes are stored)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import UsageError, config_arg, validate_scope, with_store


def add_parsers(sub: Any) -> None:
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once, on the last line)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["admin", "viewer", "officer"])
    create.add_argument("--scope", required=True)
    config_arg(create)
    config_arg(token_sub.add_parser("list", help="list tokens (never the secret)"))
    revoke = token_sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("--name", required=True)
    config_arg(revoke)


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from gateway.web.auth import hash_token, new_token

    if args.token_command == "create":  # noqa: S105 (a subcommand name)
        validate_scope(args.scope, loaded)
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

        return await with_store(loaded, create)
    if args.token_command == "list":  # noqa: S105 (a subcommand name)

        async def show(store: Any) -> int:
            for row in await store.list_tokens():
                state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
                print(
                    f"{row['name']}\t{row['role']}\t{row['scope']}\t{state}\t"
                    f"created {row['created_at']:%Y-%m-%d %H:%M}"
                )
            return 0

        return await with_store(loaded, show)

    async def revoke(store: Any) -> int:
        if not await store.revoke_token(args.name):
            print(f"kanal: no active token named {args.name!r}", file=sys.stderr)
            return 1
        print(f"token {args.name} revoked")
        return 0

    return await with_store(loaded, revoke)
