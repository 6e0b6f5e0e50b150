"""The fleet's commands: `collector`, the service probes submit to, and `fleet status`, what
it makes of them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsdi_tracker.cli.common import EXIT_OK, arun
from nsdi_tracker.core.errors import ConfigError, TrackerError

if TYPE_CHECKING:  # the collector's modules load only when a command needs them
    from nsdi_tracker.settings.collector import CollectorConfig
    from nsdi_tracker.settings.config import Listen


def collector(args: argparse.Namespace) -> int:
    from nsdi_tracker.delivery.sinks import KINDS
    from nsdi_tracker.settings.collector import load_collector
    from nsdi_tracker.settings.config import parse_listen

    config = load_collector(Path(args.config), KINDS)
    listen = config.listen
    if args.listen:
        listen = parse_listen(args.listen, "--listen", lambda k, why: ConfigError(f"{k}: {why}"))
    arun(_collect(config, listen))
    return EXIT_OK


async def _collect(config: CollectorConfig, listen: Listen) -> None:
    import psycopg
    import psycopg_pool

    from nsdi_tracker.service.collector import Collector
    from nsdi_tracker.service.server import until_stopped
    from nsdi_tracker.store.postgres.fleet import FleetStore

    try:
        store = await FleetStore.open(config.database)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:  # libpq never echoes a password
        raise TrackerError(f"{config.path}: database: cannot open it: {exc}") from None
    try:
        service = Collector(config, store)
        await service.prepare()
        async with service.running(listen) as address:
            sinks = ", ".join(s.name for s in config.sinks)
            print(
                f"collector on http://{address}/ for {len(config.probes)} probes; "
                f"fleet events to {sinks}",
                flush=True,
            )
            await until_stopped()
    finally:
        await store.close()


def fleet(args: argparse.Namespace) -> int:
    """`fleet status`: the fleet's verdicts from a collector, as a matrix or as JSON."""
    return arun(_status(args.collector.rstrip("/"), args.limit, args.json))


async def _status(base: str, limit: int, as_json: bool) -> int:
    import json

    from rich.console import Console

    from nsdi_tracker.service.fleet_api import fleet_view
    from nsdi_tracker.ui.fleet import render

    status, details = await fleet_view(base, 0 if as_json else limit)
    if as_json:
        print(json.dumps(status, ensure_ascii=False, indent=1))
        return EXIT_OK
    Console().print(render(status, details, len(status["domains"])))
    return EXIT_OK


def fleet_demo(args: argparse.Namespace) -> int:
    import sys
    import tempfile

    from rich.console import Console

    from nsdi_tracker import fleet_demo as play
    from nsdi_tracker.service.server import until_stopped
    from nsdi_tracker.ui import logs
    from nsdi_tracker.ui.fleet import render

    if args.rounds < play.CHANGE_ROUND + 2:
        raise ConfigError(
            f"--rounds must be at least {play.CHANGE_ROUND + 2} (the story changes in round "
            f"{play.CHANGE_ROUND})"
        )
    folder = args.dir or Path(tempfile.mkdtemp(prefix="nsdi-fleet-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    logs.setup("warning", "text")
    wait = not args.no_wait and sys.stdin.isatty()

    console = Console()

    async def until(url: str, status: dict[str, Any], details: dict[str, Any]) -> None:
        console.print(render(status, details, len(status["domains"])))
        print(f"\nthe collector stays up: nsdi-tracker fleet status --collector {url}")
        print(f"(and {url}/api/fleet/status); Ctrl-C stops it", flush=True)
        await until_stopped()

    status, details = arun(
        play.run(folder, rounds=args.rounds, listen=args.listen, until=until if wait else None)
    )
    if not wait:
        console.print(render(status, details, len(status["domains"])))
    print(f"files: {folder}")
    return EXIT_OK
