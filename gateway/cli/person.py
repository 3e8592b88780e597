"""`kanal person export|erase --phone P | --email E`: a data subject's requests under
UU PDP 27/2022 (everything kanal holds about one citizen, as JSON; or its erasure)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import UsageError, config_arg, with_store
from gateway.cli.purge import POSTGRES_TRUTH
from gateway.store.engine import sqlite_path
from gateway.store.personal import Citizen, checkpoint_sqlite, erase_citizen, export_citizen
from normalizers.phone import normalize_phone


def add_parsers(sub: Any) -> None:
    person = sub.add_parser("person", help="one citizen's personal data: export or erase")
    person_sub = person.add_subparsers(dest="person_command", required=True)
    for name, help_text in (
        ("export", "everything kanal holds about one citizen, as JSON"),
        ("erase", "erase it, leaving that citizen's reports anonymous"),
    ):
        parser = person_sub.add_parser(name, help=help_text)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--phone", metavar="P")
        who.add_argument("--email", metavar="E")
        config_arg(parser)


def citizen_of(args: argparse.Namespace) -> Citizen:
    if args.phone is not None:
        phone = normalize_phone(args.phone).e164
        if phone is None:
            raise UsageError(f"--phone: {args.phone!r} is not a phone number")
        return Citizen(phone=phone)
    email = args.email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise UsageError(f"--email: {args.email!r} is not an e-mail address")
    return Citizen(email=email)


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    citizen = citizen_of(args)

    async def export(store: Any) -> int:
        async with store.read() as conn:
            found = await conn.run_sync(export_citizen, citizen)
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0

    async def erase(store: Any) -> int:
        now = store.clock()
        erased = await store.run_write(lambda conn: erase_citizen(conn, citizen, now=now))
        print(f"erased: {erased.summary()}")
        path = sqlite_path(store.url)
        if path is not None and not checkpoint_sqlite(path):
            print("kanal: the write-ahead log is still in use; run kanal purge later to empty it")
            return 1
        if store.dialect == "postgresql":
            print(POSTGRES_TRUTH)
        return 0

    return await with_store(loaded, export if args.person_command == "export" else erase)
