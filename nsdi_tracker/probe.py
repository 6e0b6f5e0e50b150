"""Asking one resolver: rate limit, in-flight cap, retries on a fresh socket, TCP on truncation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import aiohttp

from nsdi_tracker import transport
from nsdi_tracker.config import ResolverSpec
from nsdi_tracker.model import Observation, Outcome, Transport
from nsdi_tracker.wire import make_query, observe

RETRYABLE = frozenset({Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.ERROR})


class RateLimiter:
    """Spaces query starts at least 1/qps apart (a leaky bucket with no burst)."""

    def __init__(self, qps: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / qps if qps else 0.0
        self.clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class Counters:
    """What a client sent and got, for the round summary."""

    queries: int = 0  # exchanges started, retries and TCP fallbacks included
    ignored: int = 0  # replies that did not answer our query
    by_outcome: dict[Outcome, int] = field(default_factory=dict)


class ResolverClient:
    """Sends queries to one configured resolver and returns final observations."""

    def __init__(self, spec: ResolverSpec, session: aiohttp.ClientSession | None = None) -> None:
        self.spec = spec
        self.session = session
        self.counters = Counters()
        self._inflight = asyncio.Semaphore(spec.max_inflight)
        self._pool = (
            transport.UdpPool(spec.host, spec.port) if spec.transport is Transport.UDP else None
        )
        self._limiter = RateLimiter(spec.qps)
        self._tls = (
            transport.tls_context(str(spec.ca_file) if spec.ca_file else None)
            if spec.transport in (Transport.DOT, Transport.DOH)
            else None
        )

    async def query(self, qname: str, qtype: str, *, fresh: bool = False) -> Observation:
        """Ask until a usable answer or the retries run out. Over UDP the first attempt goes
        through the shared socket pool unless `fresh`; every retry uses a fresh socket."""
        ignored = 0
        obs: Observation | None = None
        for attempt in range(1, self.spec.retries + 2):
            pooled = attempt == 1 and not fresh
            obs = await self._attempt(qname, qtype, attempt, pooled)  # with its attempt number
            ignored += obs.ignored
            if obs.outcome not in RETRYABLE:
                break
        assert obs is not None
        final = obs if obs.ignored == ignored else replace(obs, ignored=ignored)
        self.counters.by_outcome[final.outcome] = self.counters.by_outcome.get(final.outcome, 0) + 1
        self.counters.ignored += ignored
        return final

    async def __aenter__(self) -> ResolverClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self.counters.ignored += self._pool.ignored
            self._pool.ignored = 0
            self._pool.close()

    async def _attempt(self, qname: str, qtype: str, attempt: int, pooled: bool) -> Observation:
        spec = self.spec
        pooled = pooled and self._pool is not None
        # The pool builds its own query (it picks an ID free on its socket).
        query = (
            None if pooled else make_query(qname, qtype, zero_id=spec.transport is Transport.DOH)
        )
        async with self._inflight:
            await self._limiter.wait()
            self.counters.queries += 1
            used = str(spec.transport)
            if spec.transport is Transport.UDP:
                if query is None:
                    assert self._pool is not None
                    ex = await self._pool.exchange(qname, qtype, spec.timeout)
                else:
                    ex = await transport.udp(query, spec.host, spec.port, spec.timeout)
                if ex.truncated:
                    self.counters.queries += 1
                    tcp = await transport.stream(
                        query or make_query(qname, qtype), spec.host, spec.port, spec.timeout
                    )
                    ex = replace(
                        tcp,
                        ignored=ex.ignored + tcp.ignored,
                        latency_ms=ex.latency_ms + tcp.latency_ms,
                    )
                    used = "udp+tcp"
            elif spec.transport is Transport.TCP:
                assert query is not None
                ex = await transport.stream(query, spec.host, spec.port, spec.timeout)
            elif spec.transport is Transport.DOT:
                assert query is not None
                ex = await transport.stream(
                    query, spec.host, spec.port, spec.timeout, self._tls, spec.tls_name or spec.host
                )
            else:
                assert self.session is not None and spec.url is not None and query is not None
                ex = await transport.doh(query, self.session, spec.url, spec.timeout, self._tls)
        if ex.reply is not None:
            return observe(
                ex.reply,
                resolver=spec.name,
                qname=qname,
                qtype=qtype,
                transport=used,
                attempts=attempt,
                latency_ms=ex.latency_ms,
                ignored=ex.ignored,
            )
        return Observation(
            resolver=spec.name,
            qname=qname,
            qtype=qtype,
            outcome=Outcome.TIMEOUT if ex.timeout else Outcome.ERROR,
            transport=used,
            attempts=attempt,
            latency_ms=ex.latency_ms,
            error="no reply within the timeout" if ex.timeout else ex.error,
            ignored=ex.ignored,
        )
