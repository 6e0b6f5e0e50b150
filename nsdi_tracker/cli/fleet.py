"""The fleet's commands: `collector`, the service probes submit to, and `fleet status`, what
it makes of them."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from nsdi_tracker.cli.common import EXIT_OK, arun
from nsdi_tracker.core.errors import ConfigError, TrackerError


def collector(args: argparse.Namespace) -> int:
    from nsdi_tracker.settings.collector import load_collector
    from nsdi_tracker.settings.config import parse_listen

    config = load_collector(Path(args.config))
    listen = config.listen
    if args.listen:
        listen = parse_listen(args.listen, "--listen", lambda k, why: ConfigError(f"{k}: {why}"))
    arun(_collect(config, listen))
    return EXIT_OK


async def _collect(config: object, listen: object) -> None:
    import psycopg
    import psycopg_pool

    from nsdi_tracker.service.collector import Collector, start
    from nsdi_tracker.settings.collector import CollectorConfig
    from nsdi_tracker.settings.config import Listen
    from nsdi_tracker.store.postgres.fleet import FleetStore

    assert isinstance(config, CollectorConfig) and isinstance(listen, Listen)
    try:
        store = await FleetStore.open(config.database)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:  # libpq never echoes a password
        raise TrackerError(f"{config.path}: database: cannot open it: {exc}") from None
    try:
        service = Collector(config, store)
        await service.prepare()
        runner, address = await start(service, listen)
        print(f"collector on http://{address}/ for {len(config.probes)} probes", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sweeper = asyncio.ensure_future(service.forget_forever())
        await stop.wait()
        sweeper.cancel()
        await runner.cleanup()
    finally:
        await store.close()


def fleet(args: argparse.Namespace) -> int:
    """`fleet status`: the fleet's verdicts from a collector, as a matrix or as JSON."""
    return arun(_status(args.collector.rstrip("/"), args.limit, args.json))


async def _status(base: str, limit: int, as_json: bool) -> int:
    import json

    import aiohttp
    from rich.console import Console

    from nsdi_tracker.core.redact import url as shown
    from nsdi_tracker.ui.fleet import render, rows_first

    async def get(session: aiohttp.ClientSession, path: str) -> Any:
        async with session.get(base + path) as r:
            if r.status != 200:
                raise TrackerError(
                    f"{shown(base)}{path}: HTTP {r.status}: {(await r.text())[:200]}"
                )
            return await r.json()

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            status = await get(session, "/api/fleet/status")
            if as_json:
                print(json.dumps(status, ensure_ascii=False, indent=1))
                return EXIT_OK
            top = rows_first(status["domains"], limit)
            details = {d["domain"]: await get(session, f"/api/fleet/domains/{d['domain']}")
                       for d in top}  # fmt: skip
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TrackerError(f"cannot reach the collector at {shown(base)}: {exc}") from None
    Console().print(render(status, details, len(status["domains"])))
    return EXIT_OK
