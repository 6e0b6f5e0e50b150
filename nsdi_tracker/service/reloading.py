"""Reloading the config and watchlists (SIGHUP, or the files changed), a part of the Daemon.

A config that does not load is logged and the running one stays in force; a file caught
half-written by an editor is looked at once more before it counts as changed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from nsdi_tracker.core.errors import TrackerError
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.service.metrics import Metrics
from nsdi_tracker.service.upkeep import collect_garbage
from nsdi_tracker.settings.config import Config, load_config
from nsdi_tracker.settings.watchlist import Entry, load_watchlists
from nsdi_tracker.ui import logs

log = logging.getLogger("nsdi_tracker.daemon")  # the daemon's, as before
JOB_ID = "round"
FileSignature = tuple[tuple[str, int, int, int] | None, ...]


class Reloading:
    """The Daemon's reloads; the attributes below are the Daemon's."""

    config: Config
    entries: Sequence[Entry]
    metrics: Metrics
    scheduler: AsyncIOScheduler
    reload_poll: float
    _seen: FileSignature
    _wake: asyncio.Event

    def _trigger(self) -> IntervalTrigger:
        """The round job's trigger: every interval, plus up to the jitter."""
        s = self.config.schedule
        return IntervalTrigger(seconds=s.interval, jitter=s.jitter or None, timezone=UTC)

    def reload(self, why: str) -> bool:
        """Load the config and watchlists again; keep the running ones if they do not load."""
        try:
            config = load_config(self.config.path, KINDS)
            entries = load_watchlists(config.watchlists)
        except TrackerError as exc:
            self.metrics.reloaded(False)
            self._seen = self._signature()
            log.error(
                "reload (%s) rejected, the running config stays in force: %s", why, exc,
                extra={"fields": {"event": "reload", "applied": False, "error": str(exc)}},
            )  # fmt: skip
            return False
        for what, old, new in (
            ("database", self.config.database, config.database),
            ("[http] listen", self.config.listen, config.listen),
        ):
            if old != new:
                log.warning("reload: a change of %s takes effect at the next start", what)
        logs.hide((*self.config.sink_secrets, *config.sink_secrets))  # the old sinks finish first
        before = {e.domain for e in self.entries}
        after = {e.domain for e in entries}
        retimed = config.schedule != self.config.schedule
        self.config, self.entries = config, entries
        collect_garbage()
        gc.freeze()  # the new watchlist lives until the next reload: no collection walks it
        if retimed and self.scheduler.running:
            self.scheduler.reschedule_job(JOB_ID, trigger=self._trigger())
        self.metrics.watch(len(after))
        self.metrics.reloaded(True)
        self._seen = self._signature()
        self._wake.set()  # the sinks may have changed
        log.info(
            "reloaded (%s): %d domains (%d added, %d removed), %d resolvers%s",
            why, len(entries), len(after - before), len(before - after), len(config.resolvers),
            f", a round every {config.schedule.interval:g} s" if retimed else "",
            extra={"fields": {"event": "reload", "applied": True,
                              "added": sorted(after - before)[:100],
                              "removed": sorted(before - after)[:100]}},
        )  # fmt: skip
        return True

    def _signature(self) -> FileSignature:
        out: list[tuple[str, int, int, int] | None] = []
        for path in (self.config.path, *self.config.watchlists):
            try:
                st = path.stat()
            except OSError:
                out.append(None)
                continue
            out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    async def _watch_files(self) -> None:
        """Reload when the files change and then stay unchanged for one more look, so that
        a file caught half-written by an editor is not reported as an invalid config."""
        pending: FileSignature | None = None
        while True:
            await asyncio.sleep(self.reload_poll)
            now = self._signature()
            if now == self._seen:
                pending = None
            elif now == pending:
                pending = None
                self.reload("files changed")
            else:
                pending = now
