"""The commands that measure: `run` (the daemon, or one recorded round) and `check`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nsdi_tracker.cli.common import EXIT_FAIL_ON, EXIT_OK, arun, where
from nsdi_tracker.core.model import Verdict
from nsdi_tracker.settings.config import Config, listen_address
from nsdi_tracker.settings.watchlist import Entry, Watchlist, from_names, load_watchlists, merge

if TYPE_CHECKING:
    from nsdi_tracker.store.sqlite import Store

PROGRESS_THRESHOLD = 50  # domains: below this a round is quick and a bar is noise


def run(args: argparse.Namespace) -> int:
    """`run`: the daemon, or with --once one recorded round."""
    from nsdi_tracker.store.sqlite import Store
    from nsdi_tracker.ui import logs

    config, path = where(args, need_config=True)
    assert config is not None
    logs.setup(args.log_level, args.log_format)
    logs.hide(config.sink_secrets)
    entries = load_watchlists(config.watchlists)
    if args.once:
        with Store.open(path) as store:
            return arun(_run_once(config, entries, store, args.raw, args.deliver_timeout))
    from nsdi_tracker.service.daemon import Daemon, DaemonOptions

    options = DaemonOptions(listen=listen_address(args.listen, config), raw_dir=args.raw)
    with Store.open(path) as store:
        return arun(Daemon(config, entries, store, options).serve())


async def _run_once(
    config: Config, entries: Sequence[Entry], store: Store, raw: Path | None, deliver_for: float
) -> int:
    from nsdi_tracker.delivery.outbox import Outbox
    from nsdi_tracker.rounds.tracker import persisted_round

    done = await persisted_round(config, entries, store, raw_dir=raw)
    async with Outbox(store, config.sinks) as outbox:
        await outbox.drain(deliver_for)
    backlog = store.backlog()
    r = done.record
    secs = (r.finished - r.started).total_seconds()
    outcomes = " ".join(f"{k}={v}" for k, v in r.outcomes.items())
    shown = done.changes.shown
    more = r.transitions - len(shown)
    changes = ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")
    print(
        f"round {done.round_id} {r.status}: {r.domains} domains "
        f"({done.changes.unchanged} unchanged), {r.queries} queries in "
        f"{secs:.1f} s ({outcomes}); {r.transitions} transitions"
        f"{': ' + changes if changes else ''}; deliveries: {outbox.tally.delivered} delivered, "
        f"{backlog['pending']} pending, {backlog['failed']} failed; database {store.path}",
        file=sys.stderr,
    )
    return EXIT_OK


def _entries(config: Config, watchlists: list[str], domains: list[str]) -> Watchlist:
    """Names on the command line replace the config's watchlists."""
    if watchlists or domains:
        return merge([*load_watchlists(Path(p) for p in watchlists), *from_names(domains)])
    return load_watchlists(config.watchlists)


def check(args: argparse.Namespace) -> int:
    """`check`: one round's verdicts, printed; nothing is recorded."""
    config, _ = where(args, need_config=True)
    assert config is not None
    entries = _entries(config, args.watchlist, args.domains)
    return arun(_check(config, entries, as_json=args.json, fail_on=args.fail_on))


async def _check(
    config: Config, entries: Sequence[Entry], *, as_json: bool, fail_on: frozenset[Verdict]
) -> int:
    from rich.console import Console

    from nsdi_tracker.rounds.measure import measure
    from nsdi_tracker.rounds.stream import QTYPES
    from nsdi_tracker.ui.report import render, round_json

    err = Console(stderr=True)
    if not entries:
        err.print("[yellow]nothing to check: the watchlists are empty[/]")
    if len(entries) >= PROGRESS_THRESHOLD and err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(
                "measuring", total=len(entries) * len(QTYPES) * len(config.resolvers)
            )
            report = await measure(
                config, entries, progress=lambda done: bar.update(task, completed=done)
            )
    else:
        report = await measure(config, entries)
    if as_json:
        json.dump(round_json(report), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        Console().print(render(report))
    hit = any(d.national in fail_on for d in report.domains)
    return EXIT_FAIL_ON if hit else EXIT_OK
