"""`kanal user create|list|disable|password`: people who sign in to /desk and /admin."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import UsageError, config_arg, validate_scope, with_store
from gateway.store import Store
from gateway.web.people import (
    MIN_PASSWORD_LENGTH,
    ROLES,
    create_user,
    disable_user,
    list_users,
    password_problem,
    set_password,
)


def read_new_password(stdin: Any = None) -> str:
    """Twice on a terminal (getpass), else the first line of stdin."""
    stream = stdin or sys.stdin
    if stream.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password again: ")
        if first != second:
            raise UsageError("the two passwords differ")
        password = first
    else:
        password = stream.readline().rstrip("\r\n")
    problem = password_problem(password)
    if problem:
        raise UsageError(f"password: at least {MIN_PASSWORD_LENGTH} characters ({problem})")
    return password


def add_parsers(sub: Any) -> None:
    user = sub.add_parser("user", help="people who sign in to /desk and /admin")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser(
        "create", help="create a person (password from a terminal or stdin)"
    )
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=list(ROLES))
    create.add_argument("--scope", required=True)
    config_arg(create)
    config_arg(user_sub.add_parser("list", help="people with role, scope, state, last sign-in"))
    disable = user_sub.add_parser("disable", help="disable a person; their sessions end")
    disable.add_argument("--name", required=True)
    config_arg(disable)
    password = user_sub.add_parser("password", help="set a new password")
    password.add_argument("--name", required=True)
    config_arg(password)


async def list_people(store: Store) -> int:
    accounts = await list_users(store)
    if not accounts:
        print("no people yet: kanal user create --name N --role R --scope S")
    for account in accounts:
        last = (
            f"last sign-in {account.last_sign_in_at:%Y-%m-%d %H:%M} UTC"
            if account.last_sign_in_at
            else "never signed in"
        )
        print(f"{account.name}\t{account.role}\t{account.scope}\t{account.state}\t{last}")
    return 0


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if args.user_command == "list":
        return await with_store(loaded, list_people)
    name = args.name.strip()
    if not name or len(name) > 128:
        raise UsageError("--name: 1 to 128 characters")
    if args.user_command == "create":
        validate_scope(args.scope, loaded)
        password = read_new_password()

        async def create(store: Store) -> int:
            try:
                await create_user(store, name, password, args.role, args.scope)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            print(f"user {name} ({args.role}, {args.scope}) created")
            return 0

        return await with_store(loaded, create)
    if args.user_command == "password":
        password = read_new_password()

        async def change(store: Store) -> int:
            if not await set_password(store, name, password):
                print(f"kanal: no person named {name!r}", file=sys.stderr)
                return 1
            print(f"password of {name} changed; their sessions ended")
            return 0

        return await with_store(loaded, change)

    async def disable(store: Store) -> int:
        if not await disable_user(store, name):
            print(f"kanal: no active person named {name!r}", file=sys.stderr)
            return 1
        print(f"user {name} disabled; their sessions ended")
        return 0

    return await with_store(loaded, disable)
