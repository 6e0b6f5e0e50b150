"""The command line's grammar: every command, its arguments and their help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nsdi_tracker import __version__, build
from nsdi_tracker.core.model import EventType, Verdict
from nsdi_tracker.ui.export import FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsdi-tracker",
        description="Tells, with wire evidence, when a domain disappears from a national DNS.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__} ({build()})"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for add in (
        _check_command,
        _config_command,
        _run_command,
        _health_command,
        _status_command,
        _history_command,
        _dashboard_command,
        _serve_command,
        _collector_command,
        _fleet_command,
        _fleet_demo_command,
        _demo_command,
        _backup_command,
        _export_command,
    ):
        add(sub)
    return parser


def _check_command(sub: Any) -> None:
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


def _config_command(sub: Any) -> None:
    show = sub.add_parser(
        "config",
        help="validate the config and watchlists and print a summary (sends nothing)",
        description="Load and validate the configuration and its watchlists; exit 2 on error.",
    )
    _config_arg(show)


def _run_command(sub: Any) -> None:
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


def _health_command(sub: Any) -> None:
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


def _status_command(sub: Any) -> None:
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


def _history_command(sub: Any) -> None:
    history = sub.add_parser(
        "history",
        help="a domain's confirmed transitions with their evidence",
        description="Print the timeline of a domain's confirmed transitions, oldest first.",
    )
    _config_arg(history)
    _db_arg(history)
    history.add_argument("domain", metavar="DOMAIN")
    history.add_argument("--json", action="store_true", help="print JSON with full evidence")


def _dashboard_command(sub: Any) -> None:
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


def _serve_command(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="the web page and JSON API from a database, without measuring",
        description="Serve the page (overview, domains, changes, resolvers, Atom feed) and the "
        "read-only JSON API from a database that the daemon writes elsewhere, or a copy of it "
        "(`backup`), or the demo's. Opens it read-only; picks up new rounds as they appear. "
        "Ctrl-C stops.",
    )
    _config_arg(serve)
    _db_arg(serve)
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=None,
        help="where to listen (default: the config's [http] listen, else 127.0.0.1:8080)",
    )
    serve.add_argument(
        "--base-path",
        metavar="PATH",
        default=None,
        help="the path prefix behind a reverse proxy, e.g. /nsdi (default: the config's "
        "[http] base_path; the X-Forwarded-Prefix header wins)",
    )


def _collector_command(sub: Any) -> None:
    collector = sub.add_parser(
        "collector",
        help="a fleet's collector: takes probes' signed submissions into PostgreSQL",
        description="Serve POST /api/v1/submissions for the probes named in the collector's "
        "config, storing into its PostgreSQL (migrated on start). Ctrl-C or SIGTERM stops it.",
    )
    collector.add_argument(
        "-c", "--config", metavar="FILE", required=True, help="the collector's TOML config"
    )
    collector.add_argument("--listen", metavar="HOST:PORT", help="default: the config's listen")


def _fleet_command(sub: Any) -> None:
    fleet = sub.add_parser(
        "fleet",
        help="the fleet's verdicts from a collector",
        description="`fleet status`: a domain per row (removals and ISP filtering first), a "
        "probe per column grouped by ISP, each cell the probe's national verdict; --json "
        "prints the collector's /api/fleet/status.",
    )
    fleet.add_argument("action", choices=["status"], help="status")
    fleet.add_argument("--collector", metavar="URL", required=True, help="the collector's base URL")
    fleet.add_argument("--limit", type=int, default=40, help="domains shown (default 40)")
    fleet.add_argument("--json", action="store_true", help="the status as JSON")


def _fleet_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "fleet-demo",
        help="a fleet on loopback: PostgreSQL, a collector and three probes (no network)",
        description="Start a throw-away PostgreSQL from Debian, the collector and three probes "
        "in three simulated ISPs' networks; the national system drops youtube.com, one ISP "
        "also filters bbc.com; print the fleet's verdicts, and keep the collector up until "
        "Ctrl-C when run in a terminal.",
    )
    demo.add_argument("--rounds", type=int, default=8, help="rounds per probe (default 8)")
    demo.add_argument("--dir", type=Path, metavar="FOLDER", help="its files (default: temp)")
    demo.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:0", help="the collector's address"
    )
    demo.add_argument("--no-wait", action="store_true", help="exit after the verdicts")


def _demo_command(sub: Any) -> None:
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
    demo.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:8080",
        help="where the page is served while the demo runs (default 127.0.0.1:8080, or any "
        "free port when that one is taken; 'off': no page)",
    )


def _backup_command(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="copy the database safely while the daemon runs (SQLite online backup)",
        description="Write a consistent copy of the database to FILE using SQLite's online "
        "backup; the daemon keeps running and writing. The copy appears only when complete.",
    )
    _config_arg(backup)
    _db_arg(backup)
    backup.add_argument("destination", metavar="FILE", type=Path)


def _export_command(sub: Any) -> None:
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
