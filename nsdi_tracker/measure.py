"""One measurement round: controls, the watchlist on every resolver, re-asks, verdicts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import aiohttp

from nsdi_tracker import classify
from nsdi_tracker.classify import Health, Judgement, ReferenceView
from nsdi_tracker.config import Config, ResolverSpec
from nsdi_tracker.events import utcnow
from nsdi_tracker.model import Observation, Role, Transport, Verdict
from nsdi_tracker.probe import Counters, ResolverClient
from nsdi_tracker.watchlist import Entry

QTYPES = ("A", "AAAA")
Progress = Callable[[int, int], None]  # (done, total) queries of the watchlist sweep


@dataclass(frozen=True, slots=True)
class DomainResult:
    entry: Entry
    national: Verdict  # the headline from the national resolvers
    reference: ReferenceView
    judgements: dict[str, Judgement]  # per national or observed resolver
    observations: dict[str, tuple[Observation, ...]]  # per resolver: (A, AAAA)


@dataclass(frozen=True, slots=True)
class RoundReport:
    started: datetime
    finished: datetime
    resolvers: tuple[ResolverSpec, ...]
    health: dict[str, Health]
    connectivity: bool
    controls: dict[str, tuple[Observation, ...]]
    negative_name: str
    negative: dict[str, tuple[Observation, ...]]
    domains: tuple[DomainResult, ...]
    counters: dict[str, Counters]


async def measure(
    config: Config,
    entries: Sequence[Entry],
    *,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
) -> RoundReport:
    """Run one round against every configured resolver and judge every watched name."""
    rng = rng or random.Random()
    negative_name = f"nsdi-tracker-{rng.getrandbits(48):012x}.{config.negative_control_zone}"
    started = now()
    async with _doh_session(config.resolvers) as session, _clients(config, session) as clients:
        # Controls first: they decide whether each resolver's answers can be trusted this round.
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

        jobs = [(e.domain, t) for e in entries for t in QTYPES]
        found = await _sweep(clients, {n: jobs for n in clients}, progress)

        roles = {r.name: r.role for r in config.resolvers}
        ref_healths = {n: h for n, h in healths.items() if roles[n] is Role.REFERENCE}
        connectivity = classify.connectivity_ok(healths.values())

        def judge(entry: Entry) -> DomainResult:
            return _judge(config, roles, healths, ref_healths, connectivity, entry, found)

        judged = [judge(e) for e in entries]
        # An NXDOMAIN judged a removal is asked again (fresh socket) before it counts: one
        # forged or transient reply must not make a removal.
        again: dict[str, list[tuple[str, str]]] = {}
        for result in judged:
            for name, j in result.judgements.items():
                if j.verdict is Verdict.REMOVED:
                    again.setdefault(name, []).extend((result.entry.domain, t) for t in QTYPES)
        if again:
            reasked = await _sweep(clients, again, fresh=True)
            found.update({k: replace(o, reasked=True) for k, o in reasked.items()})
            redo = {d for jobs_ in again.values() for d, _ in jobs_}
            judged = [judge(r.entry) if r.entry.domain in redo else r for r in judged]
    return RoundReport(
        started=started,
        finished=now(),
        resolvers=config.resolvers,
        health=healths,
        connectivity=connectivity,
        controls=controls,
        negative_name=negative_name,
        negative=negative,
        domains=tuple(judged),
        counters={n: c.counters for n, c in clients.items()},
    )


def _judge(
    config: Config,
    roles: Mapping[str, Role],
    healths: dict[str, Health],
    ref_healths: dict[str, Health],
    connectivity: bool,
    entry: Entry,
    found: dict[tuple[str, str, str], Observation],
) -> DomainResult:
    observations = {
        r.name: tuple(found[(r.name, entry.domain, t)] for t in QTYPES) for r in config.resolvers
    }
    views = {n: classify.combine(obs) for n, obs in observations.items()}
    ref = classify.reference_view(
        {n: v for n, v in views.items() if roles[n] is Role.REFERENCE}, ref_healths
    )
    judgements = {
        n: classify.judge(
            views[n], ref, healths[n], connectivity=connectivity, sinkholes=config.sinkholes
        )
        for n in views
        if roles[n] is not Role.REFERENCE
    }
    national = classify.headline(
        [j.verdict for n, j in judgements.items() if roles[n] is Role.NATIONAL]
    )
    return DomainResult(entry, national, ref, judgements, observations)


async def _sweep(
    clients: dict[str, ResolverClient],
    jobs: Mapping[str, Sequence[tuple[str, str]]],
    progress: Progress | None = None,
    *,
    fresh: bool = False,
) -> dict[tuple[str, str, str], Observation]:
    """Ask each resolver its (name, type) jobs with at most max_inflight workers per resolver.

    Workers pull from one iterator per resolver, so no task is created per query.
    """
    results: dict[tuple[str, str, str], Observation] = {}
    total = sum(len(j) for j in jobs.values())
    done = 0

    async def worker(client: ResolverClient, todo: Iterator[tuple[str, str]]) -> None:
        nonlocal done
        for qname, qtype in todo:
            results[(client.spec.name, qname, qtype)] = await client.query(
                qname, qtype, fresh=fresh
            )
            done += 1
            if progress is not None:
                progress(done, total)

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
        r.name: ResolverClient(r, session if r.transport is Transport.DOH else None)
        for r in config.resolvers
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()  # the UDP pools' sockets; their stray replies join the counters


@asynccontextmanager
async def _doh_session(resolvers: Sequence[ResolverSpec]) -> AsyncIterator[aiohttp.ClientSession]:
    limit = sum(r.max_inflight for r in resolvers if r.transport is Transport.DOH) or 1
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, use_dns_cache=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session
