"""`nsdi-tracker serve --db FILE`: the status server's pages and JSON API from a database,
without measuring: to publish a copy (a backup synced to a web host), or to browse the demo's
database. Nothing is written: the database is opened read-only, a daemon may be writing it.

Its health is the database's: readable, and how old its last round is; the snapshot that
/api/status answers from is rebuilt when a new round appears in the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.service import snapshot
from nsdi_tracker.service.health import Assessment
from nsdi_tracker.service.metrics import Metrics
from nsdi_tracker.service.server import start, until_stopped
from nsdi_tracker.service.snapshot import Readers, Snapshot
from nsdi_tracker.service.source import Served
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.sqlite import Store

log = logging.getLogger("nsdi_tracker.publish")
POLL = 2.0  # seconds between looks for a new round in the file


class Publisher:
    """A StatusSource over a database file that something else writes (or nothing does)."""

    def __init__(
        self, database: Path, *, base_path: str = "", clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._served = Served(database, base_path=base_path)
        self.clock = clock
        self.started = clock()
        self.snapshot: Snapshot | None = None
        self.readers = Readers(database)
        self._seen: int | None = None  # the last round the snapshot was built on

    @property
    def served(self) -> Served:
        return self._served

    @property
    def metrics(self) -> Metrics | None:
        return None  # nothing measures here

    async def read(self, fn: Callable[[Store], Any]) -> Any:
        return await self.readers.run(fn)

    def next_round(self) -> datetime | None:
        return None

    async def assess(self) -> tuple[Assessment, dict[str, Any] | None]:
        """Healthy while the database can be read; the last round says how current it is."""
        try:
            last = await self.read(lambda s: s.last_round())
        except StoreError as exc:
            return Assessment(False, f"database: {exc}"), None
        if last is None:
            return Assessment(True, "publishing a database without rounds yet"), None
        return Assessment(True, f"publishing; the last round #{last['id']} is in"), last

    async def refresh(self) -> None:
        """Build the snapshot again if the file has a round the snapshot does not."""
        last = await self.read(lambda s: s.last_round())
        newest = last["id"] if last else 0
        if newest != self._seen or self.snapshot is None:
            generation = self.snapshot.generation + 1 if self.snapshot else 1
            self.snapshot = await self.read(lambda s: snapshot.build(s, generation))
            self._seen = newest

    async def follow(self) -> None:
        """Look for new rounds every POLL seconds until cancelled."""
        while True:
            await asyncio.sleep(POLL)
            try:
                await self.refresh()
            except StoreError as exc:
                log.warning("cannot read %s: %s", self._served.database, exc)

    def close(self) -> None:
        self.readers.close()


async def serve(publisher: Publisher, listen: Listen) -> None:
    """Serve until SIGINT or SIGTERM; a new round in the file is picked up within POLL s."""
    await publisher.refresh()
    runner, address = await start(publisher, listen)
    print(f"serving {publisher.served.database} on http://{address}/ (Ctrl-C stops)", flush=True)
    task = asyncio.ensure_future(publisher.follow())
    try:
        await until_stopped()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()
        publisher.close()
