"""`kanal check-config`: the configuration, with every problem listed at once."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import config_arg


def add_parsers(sub: Any) -> None:
    config_arg(
        sub.add_parser("check-config", help="validate the configuration and list every problem")
    )


def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    # Problems make load_config fail before this runs (exit 2, listed by main).
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    print(f"configuration ok ({loaded.source})")
    return 0
