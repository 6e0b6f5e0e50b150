"""The command line: parse arguments, build objects, call the library, choose an exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nsdi_tracker import __version__
from nsdi_tracker.config import Config, config_path, load_config
from nsdi_tracker.errors import TrackerError
from nsdi_tracker.model import Verdict
from nsdi_tracker.watchlist import Entry, from_names, load_watchlists, merge

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
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(config_path(args.config))
        if args.command == "config":
            return _show_config(config)
        entries = _entries(config, args.watchlist, args.domains)
    except TrackerError as exc:
        print(f"nsdi-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_check(config, entries, as_json=args.json, fail_on=args.fail_on))


def _entries(config: Config, watchlists: list[str], domains: list[str]) -> list[Entry]:
    """Names on the command line replace the config's watchlists."""
    if watchlists or domains:
        return merge([*load_watchlists(Path(p) for p in watchlists), *from_names(domains)])
    return load_watchlists(config.watchlists)


async def _check(
    config: Config, entries: list[Entry], *, as_json: bool, fail_on: frozenset[Verdict]
) -> int:
    from rich.console import Console

    from nsdi_tracker.measure import measure
    from nsdi_tracker.report import render, round_json

    err = Console(stderr=True)
    if not entries:
        err.print("[yellow]nothing to check: the watchlists are empty[/]")
    if len(entries) >= PROGRESS_THRESHOLD and err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("measuring", total=None)
            report = await measure(
                config, entries, progress=lambda d, t: bar.update(task, completed=d, total=t)
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
    return EXIT_OK
