"""Asking one resolver: rate limit, in-flight cap, retries on a fresh socket, TCP on truncation."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

import aiohttp

from nsdi_tracker.core.model import Observation, Outcome, Summary, Transport
from nsdi_tracker.dns.fastwire import Query
from nsdi_tracker.dns.latency import empty_histogram, latency_bucket
from nsdi_tracker.dns.transports import TRANSPORTS, Exchange
from nsdi_tracker.dns.transports.stream import stream
from nsdi_tracker.dns.transports.udp import PoolOwner, UdpPool
from nsdi_tracker.dns.wire import make_query, observation, observe, outcome_of
from nsdi_tracker.settings.resolvers import ResolverSpec

RETRYABLE: Final = frozenset({Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.ERROR})
_POOLED: Final = (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN)  # what observed() counts


class RateLimiter:
    """Spaces query starts at least 1/qps apart (a leaky bucket with no burst)."""

    def __init__(self, qps: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / qps if qps else 0.0
        self.clock = clock
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next start slot: seconds from now until it (0: go now)."""
        if not self.interval:
            return 0.0
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Counters:
    """What a client sent and got, for the round summary."""

    queries: int = 0  # exchanges started, retries and TCP fallbacks included
    ignored: int = 0  # replies that did not answer our query
    by_outcome: dict[Outcome, int] = field(default_factory=dict)
    latency_sum_ms: float = 0.0  # over the final observations


class ResolverClient:
    """Sends queries to one configured resolver and returns final observations."""

    def __init__(self, spec: ResolverSpec, session: aiohttp.ClientSession | None = None) -> None:
        self.spec = spec
        self.session = session
        self.counters = Counters()
        self.latency = empty_histogram()  # final observations, by LATENCY_EDGES_MS bucket
        self._pooled = [0, 0, 0]  # observed(): answers, NODATA, NXDOMAIN, until close()
        self._inflight = asyncio.Semaphore(spec.max_inflight)
        # UDP's first attempts share a socket pool; everything else asks through its transport
        self._pool = (
            UdpPool(spec.host, spec.port, spec.timeout) if spec.transport is Transport.UDP else None
        )
        self.limiter = RateLimiter(spec.qps)
        kind = TRANSPORTS[spec.transport]
        self._ask = kind.connect(spec, session)
        self._zero_id = kind.zero_id

    async def query(
        self, qname: str, qtype: str, *, fresh: bool = False, first: Exchange | None = None
    ) -> Observation:
        """Ask until a usable answer or the retries run out. Over UDP the first attempt goes
        through the shared socket pool unless `fresh`; every retry uses a fresh socket. A
        caller that already has the first attempt's exchange (a Lane) passes it as `first`."""
        ignored = 0
        obs: Observation | None = None
        for attempt in range(1, self.spec.retries + 2):
            if first is not None and attempt == 1:
                obs = await self._settle(qname, qtype, 1, first, None)
            else:
                obs = await self._attempt(qname, qtype, attempt, attempt == 1 and not fresh)
            ignored += obs.ignored
            if obs.outcome not in RETRYABLE:
                break
        assert obs is not None
        final = obs if obs.ignored == ignored else obs._replace(ignored=ignored)
        self.counted(final)
        return final

    def counted(self, obs: Observation) -> None:
        """Count a final observation: by outcome, ignored replies and latency bucket."""
        by = self.counters.by_outcome
        by[obs.outcome] = by.get(obs.outcome, 0) + 1
        self._tally(obs.ignored, obs.latency_ms)

    def _tally(self, ignored: int, latency_ms: float | None) -> None:
        """What every counted observation adds besides its outcome."""
        counters = self.counters
        counters.ignored += ignored
        if latency_ms is not None:
            self.latency[latency_bucket(latency_ms)] += 1
            counters.latency_sum_ms += latency_ms

    @property
    def pool(self) -> UdpPool | None:
        return self._pool

    def observed(
        self, qname: str, qtype: str, reply: Summary, latency_ms: float, ignored: int
    ) -> Observation | None:
        """The final observation of a pooled first attempt's reply, counted; None when it
        needs more (SERVFAIL, REFUSED or an unknown rcode: a retry on a fresh socket). Told
        apart by identity and counted in a list: an enum as a set member or a dict key costs
        a call to its hash, and this runs for every reply."""
        outcome = outcome_of(reply)
        if outcome is Outcome.ANSWER:
            kind = 0
        elif outcome is Outcome.NODATA:
            kind = 1
        elif outcome is Outcome.NXDOMAIN:
            kind = 2
        else:
            return None
        obs = observation(
            reply, outcome, self.spec.name, qname, qtype, "udp", 1, latency_ms, ignored
        )
        self._pooled[kind] += 1
        self._tally(ignored, latency_ms)
        return obs

    async def __aenter__(self) -> ResolverClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        by = self.counters.by_outcome  # the pooled replies' counts join the others
        for outcome, n in zip(_POOLED, self._pooled, strict=True):
            if n:
                by[outcome] = by.get(outcome, 0) + n
        self._pooled = [0, 0, 0]
        if self._pool is not None:
            self.counters.ignored += self._pool.ignored
            self._pool.ignored = 0
            self._pool.close()

    async def _attempt(self, qname: str, qtype: str, attempt: int, pooled: bool) -> Observation:
        pooled = pooled and self._pool is not None
        query = make_query(qname, qtype, zero_id=self._zero_id)
        async with self._inflight:
            await self.limiter.wait()
            self.counters.queries += 1
            if pooled:
                assert self._pool is not None
                ex = await self._pool.exchange(query)  # the pool picks the ID
            else:
                ex = await self._ask(query)
            return await self._settle(qname, qtype, attempt, ex, query)

    async def _settle(
        self, qname: str, qtype: str, attempt: int, ex: Exchange, query: Query | None
    ) -> Observation:
        """The observation an exchange gives; a truncated UDP reply is asked again over TCP."""
        spec = self.spec
        used = str(spec.transport)
        if ex.truncated:
            self.counters.queries += 1
            tcp = await stream(
                query or make_query(qname, qtype), spec.host, spec.port, spec.timeout
            )
            tcp.ignored += ex.ignored
            tcp.latency_ms += ex.latency_ms
            ex, used = tcp, "udp+tcp"
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


Deliver = Callable[[Any, int, Observation], None]
Job = tuple[Any, int, Query]  # (token, index, the question: its ID is left to the pool)


class Lane(PoolOwner):
    """Feeds one resolver a stream of jobs (token, index, query) with at most `max_inflight`
    in flight.

    Over UDP the first attempt of each job goes through the resolver's socket pool with the
    lane as its owner: no task, future, timer or closure of its own; only a job that needs
    more (a retry, TCP after truncation) becomes a task, running ResolverClient.query from
    where the pool left it. Other transports run one task per job in flight. A job's query
    is a template: its name and type, and the bytes the pool sends with an ID of its own.
    `deliver(token, index, observation)` is called once per job, from the event loop; the
    lane takes the next job itself. An error that is not a DNS outcome (a bug) goes to
    `fail`, so the round ends instead of waiting for an answer that will never be delivered.
    """

    def __init__(
        self, client: ResolverClient, deliver: Deliver, fail: Callable[[BaseException], None]
    ) -> None:
        self.client = client
        self.deliver = deliver
        self.fail = fail
        self.jobs: collections.deque[Job] = collections.deque()
        self.inflight = 0
        self.window = client.spec.max_inflight
        self.tasks: set[asyncio.Task[None]] = set()
        self._held: asyncio.TimerHandle | None = None  # a send waiting for its rate-limit slot
        self._loop = asyncio.get_running_loop()
        self.pooled: UdpPool | None = None  # the open pool the first attempts go through

    async def open(self) -> None:
        """Open the UDP pool; if it cannot be opened, every job runs as a task instead."""
        pool = self.client.pool
        self.pooled = None
        if pool is not None:
            try:
                await pool.open()
            except OSError:
                return
            self.pooled = pool

    def pump(self) -> None:
        """Start jobs until the window is full, the jobs run out or the rate limit says wait."""
        limiter = self.client.limiter
        jobs = self.jobs
        pool = self.pooled
        while self.inflight < self.window and jobs and self._held is None:
            job = jobs.popleft()
            self.inflight += 1
            if pool is None:
                self._follow(job, None)  # a task's query waits for its own rate-limit slot
                continue
            delay = limiter.reserve() if limiter.interval else 0.0
            if delay > 0:
                self._held = self._loop.call_later(delay, self._release, job)
                return
            self.client.counters.queries += 1
            pool.send(job[2], self, job)

    def _release(self, job: Job) -> None:
        self._held = None
        assert self.pooled is not None
        self.client.counters.queries += 1
        self.pooled.send(job[2], self, job)
        self.pump()

    def answered(self, job: object, reply: Summary, latency_ms: float, ignored: int) -> None:
        """The pool's reply to a job's first attempt."""
        try:
            token, index, query = mine = cast(Job, job)
            obs = self.client.observed(query.qname, query.qtype, reply, latency_ms, ignored)
            if obs is None:
                self._follow(mine, Exchange(reply=reply, latency_ms=latency_ms, ignored=ignored))
            else:
                self._finish(token, index, obs)
        except Exception as exc:  # in the pool's reader: nobody else would see it
            self.fail(exc)

    def failed(self, job: object, ex: Exchange) -> None:
        """The pool's timeout, send error or truncation: the job's task takes it from there."""
        try:
            self._follow(cast(Job, job), ex)
        except Exception as exc:
            self.fail(exc)

    def _follow(self, job: Job, ex: Exchange | None) -> None:
        """The job's task: the whole query, or what follows a pooled first exchange."""
        token, index, query = job

        async def run() -> None:
            obs = await self.client.query(query.qname, query.qtype, first=ex)
            self._finish(token, index, obs)

        task = self._loop.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())  # type: ignore[arg-type]

    def _finish(self, token: Any, index: int, obs: Observation) -> None:
        self.inflight -= 1
        self.deliver(token, index, obs)
        self.pump()

    def cancel(self) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None
        for task in self.tasks:
            task.cancel()
        self.jobs.clear()
