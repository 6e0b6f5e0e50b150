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
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

import aiohttp

from nsdi_tracker.core import redact
from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.delivery.sinks import DeliveryError, Sender, make_sender
from nsdi_tracker.settings.sinks import SinkSpec
from nsdi_tracker.store.dbthread import INLINE, DbThread
from nsdi_tracker.store.protocols import DeliveryQueue
from nsdi_tracker.store.records import Delivery

log = logging.getLogger("nsdi_tracker.outbox")  # its name since 0.1: filters use it

IDLE = 60.0  # seconds a sink with nothing due sleeps before it looks again (unless woken)
PASS_RETRY = 5.0  # seconds before a sink whose pass failed (not a delivery) tries again


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
    """Sends what the store has due for the configured sinks, each sink on its own: a slow,
    dead or broken sink never delays another."""

    def __init__(
        self,
        store: DeliveryQueue,
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
        self._wakes = {name: asyncio.Event() for name in self.specs}
        self._stopping = False

    async def __aenter__(self) -> Outbox:
        # Senders are made when their sink first has something to send: one that cannot be
        # made (a URL Apprise no longer takes, say) is that sink's failure, not everyone's.
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sender in self._senders.values():
            with suppress(Exception):
                await sender.close()
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """Something new may be due: every sink looks now instead of at its next due time."""
        for event in self._wakes.values():
            event.set()

    def stop(self) -> None:
        """`serve` returns once each sink has finished the delivery under way."""
        self._stopping = True
        self.wake()

    async def serve(self) -> None:
        """Deliver until `stop`: one task per sink, each in event order, at its own pace."""
        async with asyncio.TaskGroup() as group:
            for name in self.specs:
                group.create_task(self._sink_loop(name, None), name=f"sink {name}")

    async def drain(self, within: float) -> bool:
        """Deliver until nothing is pending or `within` seconds have passed; True if done."""
        deadline = asyncio.get_running_loop().time() + within
        done = await asyncio.gather(*(self._sink_loop(n, deadline) for n in self.specs))
        return all(done)

    async def deliver_due(self) -> int:
        """One pass over what is due now, every sink at once; how many were tried."""
        return sum(await asyncio.gather(*(self._pass(n) for n in self.specs)))

    async def _sink_loop(self, name: str, deadline: float | None) -> bool:
        """One sink's deliveries: passes while something is due, then a sleep until its next
        due time or a wake-up. With a deadline (drain), True once nothing is pending."""
        loop = asyncio.get_running_loop()
        wake = self._wakes[name]
        while not self._stopping:
            wake.clear()
            try:
                await self._pass(name)
                nxt = await self.db.run(self._next_due, name)
            except Exception as exc:  # the database, say: this sink tries again shortly
                why = self._scrub(name, f"{type(exc).__name__}: {exc}")
                log.error("sink %s: pass failed (%s); again in %g s", name, why, PASS_RETRY)
                nxt = self.clock() + timedelta(seconds=PASS_RETRY)
            if nxt is None and deadline is not None:
                return True
            wait = IDLE if nxt is None else (nxt - self.clock()).total_seconds()
            if deadline is not None and loop.time() + wait > deadline:
                return False
            if wait > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(wait, IDLE))
        return False

    async def _pass(self, name: str) -> int:
        """Send what is due for one sink, in order, until one fails (the sink then rests)."""
        now = self.clock()
        if self._resting.get(name, now) > now:
            return 0
        due = await self.db.run(self.store.due, now, [name], limit=1000)
        if not due:
            return 0
        spec = self.specs[name]
        try:
            sender = self._sender(spec)
        except Exception as exc:
            await self._failed(spec, due[0], f"cannot set the sink up: {exc}")
            return 1
        for n, delivery in enumerate(due, 1):
            try:
                await asyncio.wait_for(sender.send(delivery.event), spec.timeout + 5)
            except (DeliveryError, TimeoutError) as exc:
                await self._failed(spec, delivery, str(exc) or "timed out")
                return n
            except Exception as exc:  # a sink's bug must not stop the others or the rounds
                await self._failed(spec, delivery, f"{type(exc).__name__}: {exc}")
                return n
            await self.db.run(self.store.mark_delivered, delivery.id, self.clock())
            self.tally.delivered += 1
            self._report(name, "delivered")
        return len(due)

    def _sender(self, spec: SinkSpec) -> Sender:
        sender = self._senders.get(spec.name)
        if sender is None:
            assert self._session is not None, "use the Outbox as an async context manager"
            sender = self._senders[spec.name] = make_sender(spec, self._session)
        return sender

    def _report(self, sink: str, result: str) -> None:
        if self.on_result is not None:
            self.on_result(sink, result)

    def _scrub(self, name: str, text: str) -> str:
        spec = self.specs[name]
        return redact.scrub(text, spec.options.secrets())

    async def _failed(self, spec: SinkSpec, delivery: Delivery, error: str) -> None:
        now = self.clock()
        error = self._scrub(spec.name, error)  # it is logged and stored
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

    def _next_due(self, name: str) -> datetime | None:
        """When something is next due for this sink: its rest's end if it rests."""
        nxt = self.store.next_due([name])
        resting = self._resting.get(name)
        if nxt is not None and resting is not None and resting > nxt:
            return resting
        return nxt
