"""What every command shares: exit codes, which config and which database, the event loop."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.settings.config import ENV_CONFIG, Config, config_path, database_path, load_config

T = TypeVar("T")

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE = 0, 1, 2


def where(
    args: argparse.Namespace, *, need_config: bool, only_for_db: bool = False
) -> tuple[Config | None, Path]:
    """Which config and which database a command uses, decided here alone.

    The config: --config, else $NSDI_TRACKER_CONFIG, else (for a command that needs one) the
    shipped config; a command that can do without one reads it only if one is named, and a
    command that wants it `only_for_db` (to find the database) reads none when --db names the
    database. The database: --db, else $NSDI_TRACKER_DB, else the config's `database`, else
    db/nsdi-tracker.db.
    """
    named, db = getattr(args, "config", None), getattr(args, "db", None)
    config = None
    if need_config or ((named or os.environ.get(ENV_CONFIG)) and not (only_for_db and db)):
        config = load_config(config_path(named), KINDS)
    return config, database_path(db, config)


def arun(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (the `fast` extra: a quicker event loop for big
    sweeps), else on the standard asyncio loop.

    A sweep makes a few short-lived objects per reply while the config and the watchlist
    (maybe a million entries) live for the whole run: the cyclic collector is told to leave
    what is loaded by now alone and to run less often (about a fifth less CPU per query).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
