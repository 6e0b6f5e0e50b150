"""`nsdi-tracker fleet-demo`: a fleet on loopback in under a minute.

A throw-away PostgreSQL from Debian (nsdi_tracker.sim.postgres), the real collector, and three
probes (the real daemon, each with its own SQLite) in three ISPs' networks, each asking its
ISP's national resolver and one reference, all simulated. In round 4 the national system drops
youtube.com, so every ISP's resolver loses it; the third ISP also filters bbc.com on its own.
The fleet then says: youtube.com `removed` (all three networks), bbc.com `filtered` at that one
ISP.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsdi_tracker.delivery.outbox import Outbox
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.rounds.events import headline_text
from nsdi_tracker.rounds.tracker import RoundDone
from nsdi_tracker.service.collector import Collector
from nsdi_tracker.service.daemon import Daemon, DaemonOptions
from nsdi_tracker.service.fleet_api import fleet_view
from nsdi_tracker.settings.collector import load_collector
from nsdi_tracker.settings.config import Config, load_config
from nsdi_tracker.settings.sinks import DEFAULT_EVENTS
from nsdi_tracker.settings.watchlist import load_watchlists
from nsdi_tracker.sim import CONTROL_ADDRESSES, SimResolver, Zone, answering, nxdomain
from nsdi_tracker.sim.postgres import Server, create
from nsdi_tracker.store.postgres.fleet import FleetStore
from nsdi_tracker.store.sqlite import Store

SITES = {
    "youtube.com": "142.250.74.46",
    "bbc.com": "151.101.0.81",
    "wikipedia.org": "185.15.59.224",
    "dw.com": "195.50.179.17",
}


@dataclass(frozen=True, slots=True)
class Isp:
    probe: str
    isp: str
    asn: int
    region: str
    filters_bbc: bool = False


ISPS = (
    Isp("msk-rostelecom", "Rostelecom", 12389, "Moscow"),
    Isp("spb-mts", "MTS", 8359, "Saint Petersburg"),
    Isp("ekb-ertelecom", "ER-Telecom", 31133, "Yekaterinburg", filters_bbc=True),
)
CHANGE_ROUND = 4  # after the fleet has confirmed every name present


def _zone() -> Zone:
    return answering({**CONTROL_ADDRESSES, **SITES})


def _collector_config(folder: Path, dsn: str, listen: str, tokens: dict[str, str]) -> Path:
    path = folder / "collector.toml"
    path.write_text(
        f'listen = "{listen}"\ndatabase = "{dsn}"\n'
        # a fleet verdict is confirmed over two evaluations, four a round here
        "[fleet]\nconfirm = 2\nevaluate_every = 0.25\n"
        '[[sink]]\ntype = "log"\npath = "fleet-events.ndjson"\n'
        + "".join(
            f'[[probe]]\nname = "{i.probe}"\ntoken = "{tokens[i.probe]}"\nisp = "{i.isp}"\n'
            f'asn = {i.asn}\nregion = "{i.region}"\n'
            for i in ISPS
        ),
        encoding="utf-8",
    )
    return path


def _probe_config(folder: Path, isp: Isp, national: str, reference: str, collector: str,
                  token: str, interval: float) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "watchlist.txt").write_text("\n".join(SITES) + "\n", encoding="utf-8")
    path = folder / "nsdi-tracker.toml"
    path.write_text(
        f"controls = {list(CONTROL_ADDRESSES)}\n".replace("'", '"')
        + f'watchlists = ["watchlist.txt"]\ndatabase = "probe.db"\ninterval = {interval:g}\n'
        'jitter = 0\n[[sink]]\ntype = "log"\npath = "events.ndjson"\n'
        f'[fleet]\ncollector = "{collector}"\nprobe = "{isp.probe}"\ntoken = "{token}"\n'
        f'isp = "{isp.isp}"\nasn = {isp.asn}\nregion = "{isp.region}"\n'
        "retry_initial = 0.5\nretry_max = 2\n"
        f'[[resolver]]\nname = "nsdi"\nrole = "national"\naddress = "{national}"\n'
        "timeout = 0.3\nretries = 0\n"
        f'[[resolver]]\nname = "reference"\nrole = "reference"\naddress = "{reference}"\n'
        "timeout = 0.3\nretries = 0\n",
        encoding="utf-8",
    )
    return path


async def _probe(config: Config, zone: Zone, isp: Isp, rounds: int,
                 say: Callable[[str], None]) -> None:  # fmt: skip
    """One probe's daemon for `rounds` rounds; its ISP's resolver changes at CHANGE_ROUND."""
    assert config.database is not None
    with Store.open(config.database) as store:
        daemon: Daemon
        done = 0

        def after(result: RoundDone | None) -> None:
            nonlocal done
            done += 1
            if done + 1 == CHANGE_ROUND:
                zone.set("youtube.com", nxdomain())  # the national system drops it
                if isp.filters_bbc:
                    zone.set("bbc.com", nxdomain())  # and this ISP filters bbc.com itself
            if done >= rounds:
                daemon.request_stop()

        daemon = Daemon(config, load_watchlists(config.watchlists), store,
                        DaemonOptions(on_round=after, reload_poll=3600))  # fmt: skip
        await daemon.serve()
        async with Outbox(store, config.sinks) as outbox:  # what the last round queued
            await outbox.drain(10)
    say(f"{isp.probe} ({isp.isp}, AS{isp.asn}): {rounds} rounds measured and reported")


async def run(
    folder: Path, *, rounds: int = 8, interval: float = 1.0, listen: str = "127.0.0.1:0",
    say: Callable[[str], None] = print,
    until: Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Play the fleet's story; returns the fleet's status and the shown domains' details.
    `until(url, status, details)`, if given, is awaited before the collector stops (to keep
    it up for a while)."""
    pg_folder = Path(tempfile.mkdtemp(prefix="nsdi-fleet-pg-"))  # its user must reach it
    say("starting PostgreSQL (Debian's, in a temporary folder, loopback only) ...")
    server: Server = await asyncio.to_thread(create, pg_folder)
    tokens = {i.probe: secrets.token_hex(16) for i in ISPS}
    try:
        config = load_collector(_collector_config(folder, server.dsn(), listen, tokens), KINDS)
        store = await FleetStore.open(config.database)
        collector = Collector(config, store)
        await collector.prepare()
        try:
            async with collector.running(config.listen) as address:
                url = f"http://{address}"
                say(f"collector on {url}; three probes, a round every {interval:g} s")
                await _play(folder, url, tokens, rounds, interval, say)
                await collector.evaluate()  # what the last rounds brought
                for event in await _fleet_events(collector):
                    say(f"fleet event: {headline_text(event)[0]}")
                status, details = await fleet_view(url, 40)
                if until is not None:
                    await until(url, status, details)
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(pg_folder, ignore_errors=True)
    return status, details


async def _fleet_events(collector: Collector) -> list[dict[str, Any]]:
    """The fleet's transitions so far, oldest first (baselines left out)."""
    types = sorted(DEFAULT_EVENTS)
    rows = [r async for r in collector.store.fleet_transitions(types=types, limit=None)]
    return [r["event"] for r in reversed(rows)]


async def _play(folder: Path, url: str, tokens: dict[str, str], rounds: int, interval: float,
                say: Callable[[str], None]) -> None:  # fmt: skip
    zones = {i.probe: _zone() for i in ISPS}
    reference = SimResolver(_zone())
    nationals = {i.probe: SimResolver(zones[i.probe]) for i in ISPS}
    await reference.start()
    for resolver in nationals.values():
        await resolver.start()
    try:
        configs = {
            i.probe: load_config(
                _probe_config(folder / i.probe, i, nationals[i.probe].address,
                              reference.address, url, tokens[i.probe], interval), KINDS)
            for i in ISPS
        }  # fmt: skip
        await asyncio.gather(
            *(_probe(configs[i.probe], zones[i.probe], i, rounds, say) for i in ISPS)
        )
    finally:
        for resolver in (reference, *nationals.values()):
            await resolver.stop()
