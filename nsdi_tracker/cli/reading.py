"""The commands that read: `status`, `history`, `export`, `backup`, `health` and `config`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nsdi_tracker.cli.common import EXIT_FAIL_ON, EXIT_OK, where
from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.core.errors import ConfigError, TrackerError
from nsdi_tracker.core.names import normalize
from nsdi_tracker.settings.config import listen_address
from nsdi_tracker.settings.watchlist import load_watchlists

if TYPE_CHECKING:
    from nsdi_tracker.store.sqlite import Store


def _open(args: argparse.Namespace) -> Store:
    """The database a read command reads (as `where` decides), opened read-only."""
    return _open_path(where(args, need_config=False, only_for_db=True)[1])


def _open_path(path: Path) -> Store:
    from nsdi_tracker.store.sqlite import Store

    return Store.open_readonly(path)


def status(args: argparse.Namespace) -> int:
    config, path = where(args, need_config=False, only_for_db=True)
    interval = config.schedule.interval if config else None  # to tell a stale last round
    with _open_path(path) as store:
        return _status(store, as_json=args.json, everything=args.all, interval=interval)


def history(args: argparse.Namespace) -> int:
    with _open(args) as store:
        return _history(store, args.domain, as_json=args.json)


def export(args: argparse.Namespace) -> int:
    with _open(args) as store:
        return _export(store, args)


def backup(args: argparse.Namespace) -> int:
    with _open(args) as store:
        n = store.backup(args.destination)
        print(f"backed up {store.path} to {args.destination} ({n} bytes)", file=sys.stderr)
    return EXIT_OK


def _status(store: Store, *, as_json: bool, everything: bool, interval: float | None) -> int:

    from rich.console import Console

    from nsdi_tracker.ui.views import render_status, status_json

    rows = store.status(include_unwatched=everything)
    last, backlog, resolvers = store.last_round(), store.backlog(), store.resolver_status()
    if as_json:
        doc = status_json(rows, last, backlog, resolvers)
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        Console().print(render_status(rows, last, backlog, utcnow(), resolvers, interval))
    return EXIT_OK


def _history(store: Store, domain: str, *, as_json: bool) -> int:
    from rich.console import Console

    from nsdi_tracker.ui.views import render_history

    name = normalize(domain)
    if not store.has_domain(name):
        print(f"nsdi-tracker: {name} has never been measured in {store.path}", file=sys.stderr)
        return EXIT_FAIL_ON
    rows = store.history(name)
    if as_json:
        json.dump({"domain": name, "transitions": rows}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        Console().print(render_history(name, rows))
    return EXIT_OK


def _export(store: Store, args: argparse.Namespace) -> int:

    from nsdi_tracker.ui.export import changelog_filter, write, write_csv

    try:
        flt = changelog_filter(
            utcnow(),
            since=args.since,
            until=args.until,
            domain=args.domain,
            resolver=args.resolver,
            type=args.type,
        )
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None

    if flt.domain is not None and not store.has_domain(flt.domain):
        print(
            f"nsdi-tracker: {flt.domain} has never been measured in {store.path}", file=sys.stderr
        )
    if flt.scope is not None and not store.has_scope(flt.scope):
        print(f"nsdi-tracker: {store.path} has no resolver named {flt.scope!r}", file=sys.stderr)

    def emit(out: TextIO) -> int:
        if args.format == "csv":
            return write_csv(store.changelog_csv(flt), out)
        return write(store.changelog(flt, with_event=True), out, args.format)

    n = emit(sys.stdout) if args.output is None else _write_atomically(args.output, emit)
    print(f"exported {n} transitions", file=sys.stderr)
    return EXIT_OK


def _write_atomically(path: Path, writer: Callable[[TextIO], int]) -> int:
    """Write to a temporary file beside `path` and rename it: never a half-written export."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            n = writer(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def health(args: argparse.Namespace) -> int:
    from nsdi_tracker.core.model import MEASURED
    from nsdi_tracker.service.health import assess
    from nsdi_tracker.store.sqlite import Store

    config, path = where(args, need_config=True)
    assert config is not None
    try:
        with Store.open_readonly(path) as store:
            last, measured = store.last_round(), store.last_round(MEASURED)
            problem = None  # a writer that cannot write stops finishing rounds: that shows
    except TrackerError as exc:
        last = measured = None
        problem = str(exc)
    verdict = assess(last, measured, config.schedule.interval, utcnow(), problem)
    if args.json:
        json.dump(verdict.json(last), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{'healthy' if verdict.healthy else 'unhealthy'}: {verdict.reason}")
    return EXIT_OK if verdict.healthy else EXIT_FAIL_ON


def show_config(args: argparse.Namespace) -> int:
    config, database = where(args, need_config=True)
    assert config is not None
    entries = load_watchlists(config.watchlists)
    print(f"config: {config.path}")
    for r in config.resolvers:
        limits = f"timeout={r.timeout}s retries={r.retries} max_inflight={r.max_inflight}"
        qps = f" qps={r.qps:g}" if r.qps else ""
        print(f"  {r.name:<16} {r.role!s:<9} {r.transport!s:<4} {r.address}  {limits}{qps}")
    for path in config.watchlists:
        print(f"watchlist: {path}")
    print(f"domains: {len(entries)}")
    print(f"controls: {', '.join(config.controls)}")
    print(f"negative control zone: {config.negative_control_zone}")
    if config.sinkholes:
        print(f"sinkholes: {', '.join(map(str, config.sinkholes))}")
    s = config.schedule
    print(
        f"schedule: every {s.interval:g} s + up to {s.jitter:g} s, round_timeout {s.timeout:g} s,"
        f" grace {s.grace:g} s"
    )
    listen = listen_address(None, config)
    print(f"status server: {f'http://{listen}/' if listen else 'off (no [http] listen)'}")
    print(f"database: {database}")
    return EXIT_OK
