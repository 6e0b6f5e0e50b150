"""Deliveries in the background, a part of the Daemon: the outbox serves each sink on its own
task, and this loop wakes it when a round has queued events (or a reload changed the sinks)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from nsdi_tracker.delivery.outbox import Outbox
from nsdi_tracker.service.metrics import Metrics
from nsdi_tracker.settings.config import Config
from nsdi_tracker.settings.sinks import SinkSpec
from nsdi_tracker.store.dbthread import DbThread
from nsdi_tracker.store.sqlite import Store

log = logging.getLogger("nsdi_tracker.daemon")  # the daemon's, as before
IDLE_DELIVERY_CHECK = 60.0  # seconds between outbox checks when nothing is due


class Delivering:
    """The Daemon's delivery loop; the attributes below are the Daemon's."""

    config: Config
    store: Store
    db: DbThread
    metrics: Metrics
    stopping: bool
    _wake: asyncio.Event

    async def _deliver_forever(self) -> None:
        while not self.stopping:
            try:
                await self._deliver_with(self.config.sinks)
            except Exception:  # keep the rounds going, and do not spin: a round's wake-up
                log.exception("deliveries stopped by an error; starting them again in 30 s")
                self._wake.clear()  # may still be set from before: it would not wait at all
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 30)

    async def _deliver_with(self, sinks: tuple[SinkSpec, ...]) -> None:
        """Deliver until stopping or until a reload changes the sinks. Each sink runs on its
        own (Outbox.serve); this loop wakes them when a round queued events."""
        async with Outbox(self.store, sinks, db=self.db, on_result=self.metrics.delivery) as outbox:
            serving = asyncio.create_task(outbox.serve(), name="sinks")
            try:
                while not self.stopping and self.config.sinks == sinks and not serving.done():
                    self._wake.clear()
                    outbox.wake()
                    self.metrics.set_backlog(await self.db.run(self.store.backlog))
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_DELIVERY_CHECK)
            except asyncio.CancelledError:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                raise
            outbox.stop()  # each sink finishes the delivery under way
            await serving
