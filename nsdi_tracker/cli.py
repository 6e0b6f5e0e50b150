"""The command line: parse arguments, build objects, call the library, choose an exit code."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from nsdi_tracker import __version__
from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.core.errors import ConfigError, TrackerError
from nsdi_tracker.core.model import EventType, Verdict
from nsdi_tracker.core.names import normalize
from nsdi_tracker.settings.config import (
    ENV_CONFIG,
    Config,
    config_path,
    database_path,
    listen_address,
    load_config,
)
from nsdi_tracker.settings.watchlist import Entry, Watchlist, from_names, load_watchlists, merge
from nsdi_tracker.ui.export import FORMATS

T = TypeVar("T")

if TYPE_CHECKING:
    from nsdi_tracker.store.sqlite import Store

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE = 0, 1, 2
PROGRESS_THRESHOLD = 50  # domains: below this a round is quick and a bar is noise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsdi-tracker",
        description="Tells, with wire evidence, when a domain disappears from a national DNS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="run one measurement round and print the verdicts (writes nothing)",
        description="Ask every configured resolver about every watched name, once, and print "
        "a verdict per domain and resolver with the national headline.",
    )
    _config_arg(check)
    check.add_argument(
        "--watchlist",
        "-w",
        action="append",
        default=[],
        metavar="FILE",
        help="watchlist to use instead of the config's (repeatable; .toml, .csv or text)",
    )
    check.add_argument("domains", nargs="*", metavar="DOMAIN", help="names to check instead")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    check.add_argument(
        "--fail-on",
        metavar="VERDICTS",
        type=_verdict_set,
        default=frozenset(),
        help="exit 1 when any headline verdict is in this comma-separated set, "
        "e.g. removed,tampered",
    )

    show = sub.add_parser(
        "config",
        help="validate the config and watchlists and print a summary (sends nothing)",
        description="Load and validate the configuration and its watchlists; exit 2 on error.",
    )
    _config_arg(show)

    run = sub.add_parser(
        "run",
        help="the daemon: rounds on a schedule, confirmed transitions recorded, events delivered",
        description="Measure every watched name every `interval` seconds, confirm verdict "
        "changes over consecutive rounds, store them with their evidence and deliver the "
        "resulting events to the configured sinks. SIGTERM/SIGINT stop it cleanly; SIGHUP "
        "(or editing the config or a watchlist) reloads. With --once: one round, then exit.",
    )
    _config_arg(run)
    _db_arg(run)
    run.add_argument("--once", action="store_true", help="run one round and exit")
    run.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="status server address (default: $NSDI_TRACKER_LISTEN, else the config's "
        "[http] listen; none if neither is set)",
    )
    run.add_argument(
        "--raw",
        metavar="DIR",
        type=Path,
        help="also append every observation to DIR/observations-DAY.ndjson.gz",
    )
    run.add_argument(
        "--deliver-timeout",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="with --once: how long to keep retrying deliveries before exiting (default 30); "
        "what is left is retried by the next run",
    )
    _log_arg(run)

    health = sub.add_parser(
        "health",
        help="exit 0 if the tracker is healthy, 1 if not (the rule of /healthz)",
        description="Healthy: a round that measured (ok or partial) ended within two "
        "intervals (a writer that cannot write finishes none). Reads the database; sends "
        "no queries. "
        "The Docker HEALTHCHECK runs this.",
    )
    _config_arg(health)
    _db_arg(health)
    health.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    status = sub.add_parser(
        "status",
        help="current verdicts from the database (sends no queries)",
        description="Print the confirmed verdict of every watched domain, per resolver and "
        "for the national headline, with pending changes, from the database.",
    )
    _config_arg(status)
    _db_arg(status)
    status.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    status.add_argument(
        "--all", action="store_true", help="include domains no longer on the watchlists"
    )

    history = sub.add_parser(
        "history",
        help="a domain's confirmed transitions with their evidence",
        description="Print the timeline of a domain's confirmed transitions, oldest first.",
    )
    _config_arg(history)
    _db_arg(history)
    history.add_argument("domain", metavar="DOMAIN")
    history.add_argument("--json", action="store_true", help="print JSON with full evidence")

    dash = sub.add_parser(
        "dashboard",
        help="a live terminal view of the database while the daemon writes to it",
        description="Full-screen view of the tracker's database, refreshed every few seconds; "
        "reads only, never blocks the daemon. Ctrl-C leaves. With --once (or when stdout is "
        "not a terminal), prints one frame and exits.",
    )
    _config_arg(dash)
    _db_arg(dash)
    dash.add_argument("--refresh", metavar="SECONDS", type=float, default=2.0, help="default 2")
    dash.add_argument("--once", action="store_true", help="print one frame and exit")
    dash.add_argument(
        "--width", type=int, metavar="COLUMNS", help="with --once: frame width (default: terminal)"
    )

    demo = sub.add_parser(
        "demo",
        help="replay the February 2026 removals on loopback, with the dashboard (no network)",
        description="Start simulated resolvers on 127.0.0.1 (two national, a Russian public "
        "one, two references, one over DoH), a fresh database and the real daemon, and replay "
        "the February 2026 story in a couple of minutes. Needs no config and no network.",
    )
    demo.add_argument("--speed", type=float, default=1.0, help="faster than real demo time")
    demo.add_argument("--rounds", type=int, default=16, help="rounds to run (default 16)")
    demo.add_argument(
        "--dir", type=Path, metavar="FOLDER", help="where to keep its files (default: a temp dir)"
    )
    demo.add_argument("--no-dashboard", action="store_true", help="narrate instead of drawing")

    backup = sub.add_parser(
        "backup",
        help="copy the database safely while the daemon runs (SQLite online backup)",
        description="Write a consistent copy of the database to FILE using SQLite's online "
        "backup; the daemon keeps running and writing. The copy appears only when complete.",
    )
    _config_arg(backup)
    _db_arg(backup)
    backup.add_argument("destination", metavar="FILE", type=Path)

    export = sub.add_parser(
        "export",
        help="the change log as CSV, JSON or NDJSON",
        description="Stream the confirmed transitions, oldest first. Times are ISO dates or "
        "date-times (UTC unless they say otherwise) or ages such as 7d, 12h.",
    )
    _config_arg(export)
    _db_arg(export)
    export.add_argument("--since", metavar="T", help="confirmed at or after T")
    export.add_argument("--until", metavar="T", help="confirmed before T")
    export.add_argument("--domain", metavar="D", help="only this domain")
    export.add_argument("--resolver", metavar="R", help="only this scope: a resolver or national")
    export.add_argument(
        "--type",
        choices=[str(t) for t in EventType],
        metavar="TYPE",
        help="only this event type: " + ", ".join(EventType),
    )
    export.add_argument("--format", choices=FORMATS, default="csv", help="default csv")
    export.add_argument("-o", "--output", metavar="FILE", type=Path, help="default stdout")
    return parser


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="FILE",
        help="database (default: $NSDI_TRACKER_DB, else the config's `database`, "
        "else db/nsdi-tracker.db)",
    )


def _log_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="default info; logs go to stderr",
    )
    p.add_argument(
        "--log-format",
        default="auto",
        choices=("auto", "json", "text"),
        help="auto (default): one JSON object per line unless stderr is a terminal",
    )


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $NSDI_TRACKER_CONFIG, else the shipped nsdi-tracker.toml)",
    )


def _verdict_set(text: str) -> frozenset[Verdict]:
    out = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.add(Verdict(part))
        except ValueError:
            allowed = ", ".join(v.value for v in Verdict)
            raise argparse.ArgumentTypeError(f"{part!r} is not a verdict ({allowed})") from None
    return frozenset(out)


def _arun(main: Coroutine[Any, Any, T]) -> T:
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "health":
            return _health(args)
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "demo":
            return _demo(args)
        if args.command in ("status", "history", "export", "backup"):
            return _read_command(args)
        config = load_config(config_path(args.config))
        if args.command == "config":
            return _show_config(config)
        if args.command == "run":
            return _run(args, config)
        entries = _entries(config, args.watchlist, args.domains)
    except TrackerError as exc:
        print(f"nsdi-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _arun(_check(config, entries, as_json=args.json, fail_on=args.fail_on))


def _where(args: argparse.Namespace, *, need_config: bool) -> tuple[Config | None, Path]:
    """Which config and which database a command uses, decided here alone.

    The config: --config, else $NSDI_TRACKER_CONFIG, else (for a command that needs one) the
    shipped config; a command that only reads the database reads a config only if one is
    named. The database: --db, else $NSDI_TRACKER_DB, else the config's `database`, else
    db/nsdi-tracker.db.
    """
    named = getattr(args, "config", None)
    config = None
    if need_config or named or os.environ.get(ENV_CONFIG):
        config = load_config(config_path(named))
    return config, database_path(getattr(args, "db", None), config)


def _db_path(args: argparse.Namespace) -> Path:
    """The database the read-only commands use (see _where); with --db, no config is read."""
    return Path(args.db) if args.db else _where(args, need_config=False)[1]


def _read_command(args: argparse.Namespace) -> int:
    from nsdi_tracker.store.sqlite import Store

    with Store.open_readonly(_db_path(args)) as store:
        if args.command == "status":
            return _status(store, as_json=args.json, everything=args.all)
        if args.command == "history":
            return _history(store, args.domain, as_json=args.json)
        if args.command == "backup":
            n = store.backup(args.destination)
            print(f"backed up {store.path} to {args.destination} ({n} bytes)", file=sys.stderr)
            return EXIT_OK
        return _export(store, args)


def _run(args: argparse.Namespace, config: Config) -> int:
    from nsdi_tracker.store.sqlite import Store
    from nsdi_tracker.ui import logs

    logs.setup(args.log_level, args.log_format)
    logs.hide(config.sink_urls)
    entries = load_watchlists(config.watchlists)
    path = database_path(args.db, config)  # as _where decides, with the config loaded already
    if args.once:
        with Store.open(path) as store:
            return _arun(_run_once(config, entries, store, args.raw, args.deliver_timeout))
    from nsdi_tracker.service.daemon import Daemon, DaemonOptions

    options = DaemonOptions(listen=listen_address(args.listen, config), raw_dir=args.raw)
    with Store.open(path) as store:
        return _arun(Daemon(config, entries, store, options).serve())


def _dashboard(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.live import Live

    from nsdi_tracker.ui.dashboard import read, render

    config, path = _where(args, need_config=False)
    interval = config.schedule.interval if config else None

    def frame(width: int, height: int) -> Any:
        return render(read(path, utcnow(), interval, (width, height)), width, height)

    console = Console()
    if args.once or not console.is_terminal:
        _dashboard_frame(path, interval, args.width or console.width)
        return EXIT_OK
    try:
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                live.update(frame(console.size.width, console.size.height), refresh=True)
                time.sleep(max(args.refresh, 0.2))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    import tempfile

    from rich.console import Console

    from nsdi_tracker import demo
    from nsdi_tracker.ui import logs

    if args.speed <= 0 or args.rounds < 1:
        raise ConfigError("--speed must be above 0 and --rounds at least 1")
    folder = args.dir or Path(tempfile.mkdtemp(prefix="nsdi-demo-"))
    console = Console()
    live = console.is_terminal and not args.no_dashboard
    folder.mkdir(parents=True, exist_ok=True)
    if live:
        demo.quiet_logs(folder)
    else:
        logs.setup("warning", "text")

    def draw(database: Path, interval: float) -> asyncio.Future[None]:
        return asyncio.ensure_future(_live_dashboard(console, database, interval, 0.5))

    result = _arun(
        demo.run(
            folder,
            speed=args.speed,
            rounds=args.rounds,
            say=(lambda _: None) if live else print,
            while_running=draw if live else None,
            events_file=live,
        )
    )
    if live:
        _dashboard_frame(result.database, None, console.width)
    print(f"demo finished after {result.rounds} rounds.")
    print(f"  database:   {result.database}   (nsdi-tracker dashboard --db {result.database})")
    print(f"  change log: {result.csv}")
    if result.events is not None:
        print(f"  events:     {result.events}")
    return EXIT_OK


async def _live_dashboard(console: Any, database: Path, interval: float, every: float) -> None:
    from rich.live import Live

    from nsdi_tracker.ui.dashboard import read, render

    def snap() -> Any:
        if not database.exists():  # the daemon has not created it yet
            return None
        return read(database, utcnow(), interval, tuple(console.size))

    # Live draws on its own thread: drawing on the event loop would delay the replies the
    # demo's resolvers are timing.
    with Live(console=console, screen=True, refresh_per_second=4) as live:
        while True:
            shot = await asyncio.to_thread(snap)
            if shot is not None:
                live.update(render(shot, *console.size))
            await asyncio.sleep(every)


def _dashboard_frame(database: Path, interval: float | None, width: int) -> None:
    """One frame to stdout at `width` columns (no height: every row that fits the rules)."""
    from rich.console import Console

    from nsdi_tracker.ui.dashboard import read, render

    Console(width=width).print(render(read(database, utcnow(), interval), width, None))


def _health(args: argparse.Namespace) -> int:
    from nsdi_tracker.core.model import MEASURED
    from nsdi_tracker.service.health import assess
    from nsdi_tracker.store.sqlite import Store

    config, path = _where(args, need_config=True)
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
        f"round {done.round_id} {r.status}: {r.domains} domains, {r.queries} queries in "
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


async def _check(
    config: Config, entries: Sequence[Entry], *, as_json: bool, fail_on: frozenset[Verdict]
) -> int:
    from rich.console import Console

    from nsdi_tracker.rounds.measure import QTYPES, measure
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


def _status(store: Store, *, as_json: bool, everything: bool) -> int:

    from rich.console import Console

    from nsdi_tracker.ui.views import render_status, status_json

    rows = store.status(include_unwatched=everything)
    last, backlog, resolvers = store.last_round(), store.backlog(), store.resolver_status()
    if as_json:
        doc = status_json(rows, last, backlog, resolvers)
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        Console().print(render_status(rows, last, backlog, utcnow(), resolvers))
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


def _show_config(config: Config) -> int:
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
    print(f"database: {database_path(None, config)}")
    return EXIT_OK
