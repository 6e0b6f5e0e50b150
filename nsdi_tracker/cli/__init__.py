"""The command line: parse arguments, build objects, call the library, choose an exit code.

`COMMANDS` is the dispatch table: a command's name, as the parser knows it, to the function
that runs it. Adding a command is a parser entry and a row here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from nsdi_tracker.cli import fleet, measuring, reading, screens
from nsdi_tracker.cli.common import EXIT_OK, EXIT_USAGE
from nsdi_tracker.cli.parser import build_parser
from nsdi_tracker.core.errors import TrackerError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = {
    "check": measuring.check,
    "run": measuring.run,
    "status": reading.status,
    "history": reading.history,
    "export": reading.export,
    "backup": reading.backup,
    "health": reading.health,
    "config": reading.show_config,
    "dashboard": screens.dashboard,
    "serve": screens.serve,
    "collector": fleet.collector,
    "fleet": fleet.fleet,
    "fleet-demo": fleet.fleet_demo,
    "demo": screens.demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrackerError as exc:
        print(f"nsdi-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
