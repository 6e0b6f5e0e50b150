"""One measurement round: controls, the watchlist on every resolver, re-asks, verdicts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.core.model import Observation
from nsdi_tracker.dns.probe import Counters, ResolverClient
from nsdi_tracker.dns.transports import TRANSPORTS
from nsdi_tracker.judge import classify
from nsdi_tracker.judge.classify import Health
from nsdi_tracker.rounds.digest import DigestBook, round_context
from nsdi_tracker.rounds.judging import Judging
from nsdi_tracker.rounds.stream import Consumer, DomainResult, Progress, Stream
from nsdi_tracker.settings.config import Config
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.settings.watchlist import Entry


@dataclass(frozen=True, slots=True)
class RoundInfo:
    """A round without its names: controls, health, counters, latency."""

    started: datetime
    finished: datetime
    resolvers: tuple[ResolverSpec, ...]
    health: dict[str, Health]
    connectivity: bool
    controls: dict[str, tuple[Observation, ...]]
    negative_name: str
    negative: dict[str, tuple[Observation, ...]]
    counters: dict[str, Counters]
    latency: dict[str, list[int]]  # per resolver: final observations by LATENCY_EDGES_MS bucket
    domains: int  # names judged


@dataclass(frozen=True, slots=True)
class RoundReport:
    """A round with every judged name kept (`check`: a list small enough to print)."""

    info: RoundInfo
    domains: tuple[DomainResult, ...]


async def measure(
    config: Config,
    entries: Iterable[Entry],
    *,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
) -> RoundReport:
    """Run one round and keep every result."""
    entries = list(entries)
    results: list[DomainResult] = []

    async def keep(batch: list[DomainResult]) -> None:
        results.extend(batch)

    info = await sweep(config, entries, keep, rng=rng, now=now, progress=progress)
    order = {e.domain: i for i, e in enumerate(entries)}  # the watchlist's order
    return RoundReport(info, tuple(sorted(results, key=lambda r: order[r.entry.domain])))


async def sweep(
    config: Config,
    entries: Iterable[Entry],
    consume: Consumer,
    *,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
    book: DigestBook | None = None,
) -> RoundInfo:
    """Run one round against every configured resolver and judge every watched name.

    The names stream: at most AHEAD of them are in flight or judged and waiting, and judged
    names go to `consume` in batches of BATCH as they are done (in no particular order), so
    memory does not grow with the watchlist. A name whose answers look like a removal is asked
    again on fresh sockets before it is handed over. A resolver that is down this round
    (failed its controls) is not asked about the names at all: whatever it said would not
    count, and a dead resolver would make every name wait for its timeouts. With a `book`,
    a name whose replies and context match its kept digest is counted, not handed over.
    """
    rng = rng or random.Random()
    negative_name = f"nsdi-tracker-{rng.getrandbits(48):012x}.{config.negative_control_zone}"
    started = now()
    async with _doh_session(config.resolvers) as session, _clients(config, session) as clients:
        # Controls first: they decide whether each resolver's answers can be trusted this round.
        controls, negative, healths = await _controls(config, clients, negative_name)
        roles = {r.name: r.role for r in config.resolvers}
        connectivity = classify.connectivity_ok(healths.values())
        down = frozenset(n for n, h in healths.items() if not h.up)
        judging = Judging(config.sinkholes, roles, healths, connectivity, down)
        if book is not None:
            book.begin(round_context(config.resolvers, healths, connectivity, config.sinkholes))
        asked = {n: c for n, c in clients.items() if n not in down}
        stream = Stream(asked, judging.judge, entries, consume, progress, book)
        judged = await stream.run()
    return RoundInfo(
        started=started,
        finished=now(),
        resolvers=config.resolvers,
        health=healths,
        connectivity=connectivity,
        controls=controls,
        negative_name=negative_name,
        negative=negative,
        counters={n: c.counters for n, c in clients.items()},
        latency={n: c.latency for n, c in clients.items()},
        domains=judged,
    )


async def _controls(
    config: Config, clients: dict[str, ResolverClient], negative_name: str
) -> tuple[
    dict[str, tuple[Observation, ...]], dict[str, tuple[Observation, ...]], dict[str, Health]
]:
    """Every resolver asked the positive controls and the negative name: (controls, negative,
    health) by resolver."""
    checks = [(name, "A") for name in (*config.controls, negative_name)]
    pre = await _sweep(clients, {n: checks for n in clients})
    controls = {n: tuple(pre[(n, c, "A")] for c in config.controls) for n in clients}
    negative: dict[str, tuple[Observation, ...]] = {
        n: (pre[(n, negative_name, "A")],) for n in clients
    }
    healths = {
        r.name: classify.health(r.name, r.role, controls[r.name], negative[r.name])
        for r in config.resolvers
    }
    return controls, negative, healths


async def _sweep(
    clients: dict[str, ResolverClient], jobs: Mapping[str, Sequence[tuple[str, str]]]
) -> dict[tuple[str, str, str], Observation]:
    """Ask each resolver a few (name, type) jobs (the controls), max_inflight at a time."""
    results: dict[tuple[str, str, str], Observation] = {}

    async def worker(client: ResolverClient, todo: Iterator[tuple[str, str]]) -> None:
        for qname, qtype in todo:
            results[(client.spec.name, qname, qtype)] = await client.query(qname, qtype)

    async with asyncio.TaskGroup() as group:
        for name, todo in jobs.items():
            it = iter(todo)
            for _ in range(min(clients[name].spec.max_inflight, len(todo))):
                group.create_task(worker(clients[name], it))
    return results


@asynccontextmanager
async def _clients(
    config: Config, session: aiohttp.ClientSession
) -> AsyncIterator[dict[str, ResolverClient]]:
    clients = {
        r.name: ResolverClient(r, session if TRANSPORTS[r.transport].http else None)
        for r in config.resolvers
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()  # the UDP pools' sockets; their stray replies join the counters


@asynccontextmanager
async def _doh_session(resolvers: Sequence[ResolverSpec]) -> AsyncIterator[aiohttp.ClientSession]:
    limit = sum(r.max_inflight for r in resolvers if TRANSPORTS[r.transport].http) or 1
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, use_dns_cache=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session
