"""Delivery of persisted events: at least once, retried with backoff, never blocking a round.

Events reach the outbox (the `deliveries` table) in the same transaction as the transition
that made them; this module only reads due deliveries, sends them and records the result. A
crash between sending and recording means the event is sent again, with the same id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

import aiohttp

from nsdi_tracker.config import SinkSpec
from nsdi_tracker.dbthread import INLINE, DbThread
from nsdi_tracker.events import utcnow
from nsdi_tracker.sinks import DeliveryError, Sender, make_sender
from nsdi_tracker.store import Delivery, Store

log = logging.getLogger(__name__)


def backoff(spec: SinkSpec, attempts: int, rng: random.Random) -> float:
    """Seconds before the next try: doubling from retry_initial up to retry_max, with jitter
    (between half and all of it) so that many trackers do not retry in step."""
    delay = min(spec.retry_max, spec.retry_initial * 2.0 ** max(attempts - 1, 0))
    return float(delay) * (0.5 + rng.random() / 2)


@dataclass(slots=True)
class Tally:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class Outbox:
    """Sends what the store has due for the configured sinks."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[SinkSpec],
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        senders: dict[str, Sender] | None = None,
        db: DbThread = INLINE,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.db = db
        self.on_result = on_result  # (sink, delivered | retry | failed), for the metrics
        self.specs = {s.name: s for s in sinks}
        self.clock = clock
        self.rng = rng or random.Random()
        self.tally = Tally()
        self._senders: dict[str, Sender] = dict(senders or {})
        self._session: aiohttp.ClientSession | None = None
        # A sink that just failed is left alone until its retry is due: a dead receiver must
        # not cost one timeout per queued event.
        self._resting: dict[str, datetime] = {}

    async def __aenter__(self) -> Outbox:
        self._session = aiohttp.ClientSession()
        try:
            for spec in self.specs.values():
                if spec.name not in self._senders:
                    self._senders[spec.name] = make_sender(spec, self._session)
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sender in self._senders.values():
            await sender.close()
        if self._session is not None:
            await self._session.close()

    async def deliver_due(self) -> int:
        """One pass over what is due now; sinks are served concurrently, each in event order."""
        now = self.clock()
        ready = [n for n in self.specs if self._resting.get(n, now) <= now]
        due = await self.db.run(self.store.due, now, ready, limit=1000)
        by_sink: dict[str, list[Delivery]] = {}
        for d in due:
            by_sink.setdefault(d.sink, []).append(d)
        async with asyncio.TaskGroup() as group:
            for name, queue in by_sink.items():
                group.create_task(self._serve(name, queue))
        return len(due)

    async def _serve(self, name: str, queue: list[Delivery]) -> None:
        spec, sender = self.specs[name], self._senders[name]
        for delivery in queue:
            try:
                await asyncio.wait_for(sender.send(delivery.event), spec.timeout + 5)
            except (DeliveryError, TimeoutError) as exc:
                await self._failed(spec, delivery, str(exc) or "timed out")
                return
            except Exception as exc:  # a sink's bug must not stop the others or the rounds
                log.exception("sink %s raised while sending event %s", name, delivery.event["id"])
                await self._failed(spec, delivery, f"{type(exc).__name__}: {exc}")
                return
            await self.db.run(self.store.mark_delivered, delivery.id, self.clock())
            self.tally.delivered += 1
            self._report(name, "delivered")

    def _report(self, sink: str, result: str) -> None:
        if self.on_result is not None:
            self.on_result(sink, result)

    async def _failed(self, spec: SinkSpec, delivery: Delivery, error: str) -> None:
        now = self.clock()
        if (now - delivery.created).total_seconds() >= spec.give_up_after:
            await self.db.run(self.store.mark_failed, delivery.id, now, error)
            self.tally.failed += 1
            self._report(spec.name, "failed")
            log.error(
                "sink %s: gave up on event %s after %d attempts: %s",
                spec.name, delivery.event["id"], delivery.attempts + 1, error,
            )  # fmt: skip
            return
        retry_at = now + timedelta(seconds=backoff(spec, delivery.attempts + 1, self.rng))
        await self.db.run(self.store.mark_retry, delivery.id, now, retry_at, error)
        self._resting[spec.name] = retry_at
        self.tally.retried += 1
        self._report(spec.name, "retry")
        log.warning(
            "sink %s: event %s not delivered (%s); retrying at %s",
            spec.name, delivery.event["id"], error, retry_at.isoformat(timespec="seconds"),
        )  # fmt: skip

    async def next_due(self) -> datetime | None:
        """When something is next due for one of our sinks, a resting sink at its rest's end."""
        return await self.db.run(self._next_due)

    def _next_due(self) -> datetime | None:
        now = self.clock()
        resting = {n: t for n, t in self._resting.items() if t > now and n in self.specs}
        times = [self.store.next_due([n for n in self.specs if n not in resting])]
        times += [t for n, t in resting.items() if self.store.next_due([n]) is not None]
        return min((t for t in times if t is not None), default=None)

    async def drain(self, within: float) -> bool:
        """Deliver until nothing is pending or `within` seconds have passed; True if done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.deliver_due()
            nxt = await self.next_due()
            if nxt is None:
                return True
            wait = max((nxt - self.clock()).total_seconds(), 0.01)
            if loop.time() + wait > deadline:
                return False
            await asyncio.sleep(wait)
