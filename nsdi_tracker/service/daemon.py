"""The daemon: rounds on a schedule, deliveries in the background, reloads, a clean stop.

APScheduler (3.x, AsyncIOScheduler in the running loop) keeps the rhythm: an interval trigger
with jitter, coalescing, one round at a time, the first one at once. A round's measurement is
cut off after `round_timeout` and recorded as a timed-out round; its commit, once started, is
never cut off (it runs on the database thread and is one transaction either way).

Signals: SIGTERM and SIGINT stop it (a running round gets `grace` seconds, then is cancelled;
a delivery pass under way is finished; a second signal stops at once). SIGHUP, or a change of
the config or watchlist files, reloads them; a config that does not load is logged and the
running one stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from nsdi_tracker.core.clock import parse_iso, utcnow
from nsdi_tracker.core.errors import StoreError, WriterLost
from nsdi_tracker.core.model import MEASURED, RoundStatus
from nsdi_tracker.rounds.digest import DigestBook
from nsdi_tracker.rounds.tracker import RoundDone, commit_staged, staged_round
from nsdi_tracker.service import snapshot
from nsdi_tracker.service.delivering import Delivering
from nsdi_tracker.service.health import Assessment, assess
from nsdi_tracker.service.metrics import DOMAIN_SERIES_LIMIT, Metrics
from nsdi_tracker.service.reloading import JOB_ID, FileSignature, Reloading
from nsdi_tracker.service.snapshot import Readers, Snapshot
from nsdi_tracker.service.source import Served
from nsdi_tracker.service.upkeep import collect_garbage, log_round, scheduler_event
from nsdi_tracker.settings.config import Config, Listen
from nsdi_tracker.settings.watchlist import Entry
from nsdi_tracker.store.dbthread import DbThread
from nsdi_tracker.store.sqlite import Store

log = logging.getLogger("nsdi_tracker.daemon")  # its name since 0.1: filters use it
READ_YIELD = 2.0  # seconds a status-server read waits for the round under way to end


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    listen: Listen | None = None
    raw_dir: Path | None = None
    reload_poll: float = 2.0  # seconds between looks at the config and watchlist files
    # Called after every round with the round (None if it was cut off): the demo's director.
    on_round: Callable[[RoundDone | None], None] | None = None


class Daemon(Reloading, Delivering):
    """One tracker process: owns the store (through its database thread), the scheduler,
    the outbox loop, the file watcher and, when enabled, the status server."""

    def __init__(
        self,
        config: Config,
        entries: Sequence[Entry],
        store: Store,
        options: DaemonOptions = DaemonOptions(),
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.entries = entries
        # The names' digests the last committed round left: kept for these entries (a reload
        # brings new ones, and the next round reads the digests from the database).
        self.book: DigestBook | None = None
        self.store = store
        self.options = options
        self.clock = clock
        self.db = DbThread()
        self.metrics = Metrics()
        self.started = clock()
        self.listening: str | None = None  # the status server's address once bound
        self.snapshot: Snapshot | None = None  # what the status server shows (per round)
        self.readers: Readers | None = None  # the status server's database reads
        self.db_problem: str | None = None  # why the last commit failed, until one succeeds
        self.exit_code = 0  # 1 when it stopped because another writer took the database
        self.stopping = False
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._round_task: asyncio.Task[Any] | None = None
        self._progress = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while no round runs
        self._idle.set()
        self._stop = asyncio.Event()
        self._signals = 0
        self.reload_poll = options.reload_poll
        self._seen: FileSignature = self._signature()

    # -- the whole life ----------------------------------------------------------------------

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        runner = None
        background: list[asyncio.Task[Any]] = []
        try:
            await self._load_state()
            if self.options.listen is not None:
                from nsdi_tracker.service.server import start

                self.readers = Readers(self.store.path)
                await self.refresh_snapshot()
                runner, self.listening = await start(self, self.options.listen)
                log.info(
                    "status server on http://%s/ (/healthz, /metrics, /api/status)",
                    self.listening,
                    extra={"fields": {"event": "listening", "address": self.listening}},
                )
            self._start_scheduler()
            background = [
                asyncio.create_task(self._deliver_forever(), name="deliveries"),
                asyncio.create_task(self._watch_files(), name="file-watcher"),
            ]
            s = self.config.schedule
            log.info(
                "started: %d domains, %d resolvers, a round every %g s (jitter %g s, timeout %g s)",
                len(self.entries), len(self.config.resolvers), s.interval, s.jitter, s.timeout,
                extra={"fields": {"event": "started", "database": str(self.store.path),
                                  "config": str(self.config.path)}},
            )  # fmt: skip
            await self._stop.wait()
            await self._shutdown(background)
        finally:
            for task in background:
                task.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if runner is not None:
                await runner.cleanup()
            if self.readers is not None:
                await asyncio.to_thread(self.readers.close)
            self.db.close()
        log.info("stopped", extra={"fields": {"event": "stopped"}})
        return self.exit_code

    def _on_job_event(self, event: JobEvent) -> None:
        scheduler_event(event, self.metrics, stopping=bool(self._signals))

    def _start_scheduler(self) -> None:
        self.scheduler.add_listener(
            self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.scheduler.add_job(
            self._round_job,
            self._trigger(),
            id=JOB_ID,
            name="round",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(self.config.schedule.interval)),
            next_run_time=datetime.now(UTC),  # the first round at once
        )
        self.scheduler.start()

    def request_stop(self) -> None:
        """Stop as SIGTERM would (for an embedding program such as the demo)."""
        self._signals += 1
        self._stop.set()

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info(
                "%s: stopping (a running round gets %g s)", sig.name, self.config.schedule.grace
            )
            self._stop.set()
            return
        log.warning("%s again: stopping now", sig.name)
        if self._round_task is not None:
            self._round_task.cancel()

    async def _shutdown(self, background: list[asyncio.Task[Any]]) -> None:
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.schedule.grace
        self.scheduler.pause()
        task = self._round_task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0))
            if not task.done():
                log.warning("the running round did not finish within the grace period: cancelled")
                task.cancel()
                await asyncio.wait({task})
        self.scheduler.shutdown(wait=False)
        watcher = background[1]
        watcher.cancel()
        deliveries = background[0]
        if self.exit_code:  # the database is another writer's now: not even delivery marks
            deliveries.cancel()
        self._wake.set()  # the delivery loop finishes its pass under way, then returns
        await asyncio.wait({deliveries}, timeout=max(deadline - loop.time(), 1.0))
        for t in background:
            t.cancel()
        await asyncio.gather(*background, return_exceptions=True)

    async def _load_state(self) -> None:
        last = await self.db.run(self.store.last_round)
        measured = await self.db.run(self.store.last_round, MEASURED)
        await self._load_verdicts()
        self.metrics.watch(len(self.entries))
        self.metrics.set_backlog(await self.db.run(self.store.backlog))
        if last is not None:
            self.metrics.last_round.set(parse_iso(last["finished"]).timestamp())
        if measured is not None:
            self.metrics.last_measured.set(parse_iso(measured["finished"]).timestamp())

    # -- rounds ------------------------------------------------------------------------------

    @property
    def served(self) -> Served:
        """What the status server shows of this daemon's settings (as reloaded)."""
        c = self.config
        return Served(self.store.path, c.path, c.schedule, c.show_paths, c.base_path)

    def next_round(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID) if self.scheduler.running else None
        return job.next_run_time if job is not None else None

    async def _round_job(self) -> None:
        """One round. Measurement first: the status server's database reads wait while it
        runs (see `read`), so that they never compete with it for the interpreter."""
        self._idle.clear()
        try:
            await self._round()
        finally:
            self._idle.set()

    async def _round(self) -> None:
        self._round_task = asyncio.current_task()
        config, entries = self.config, self.entries
        loop = asyncio.get_running_loop()
        t0, started = loop.time(), self.clock()
        self._progress = 0
        if not await self._guard():
            return
        try:
            async with asyncio.timeout(config.schedule.timeout):
                staged = await staged_round(
                    config,
                    entries,
                    self.store,
                    db=self.db,
                    raw_dir=self.options.raw_dir,
                    progress=self._on_progress,
                    book=self.book,
                )
        except TimeoutError:
            await self._timed_out(started, loop.time() - t0, len(entries))
            if self.options.on_round is not None:
                self.options.on_round(None)
            return
        # Once measured, the round is committed even if a stop comes now: the commit runs
        # on the database thread and the thread is joined before the database is closed.
        commit = asyncio.ensure_future(
            self.db.run(commit_staged, config, self.store, staged, scheduled=True)
        )
        try:
            done = await asyncio.shield(commit)
        except WriterLost as exc:
            self._writer_lost(exc)
            return
        except (StoreError, sqlite3.Error, OSError) as exc:
            self.db_problem = str(exc)
            raise
        self.db_problem = None
        self.book = staged.book
        seconds = loop.time() - t0
        self.metrics.round_done(done, seconds)
        await self._load_verdicts()
        if done.changes.delivering or done.changes.summary:
            self._wake.set()  # the outbox sends now, not at its next idle look
        backlog = await self.db.run(self.store.backlog)
        self.metrics.set_backlog(backlog)
        log_round(done, seconds, backlog)
        await self.refresh_snapshot()
        collect_garbage()
        if self.options.on_round is not None:
            self.options.on_round(done)

    async def _guard(self) -> bool:
        """Before a round: the database is still ours to write (see Store.guard). A failed
        check skips the round, loudly, and keeps /healthz failing until it passes."""
        try:
            notes = await self.db.run(self.store.guard, reconnect=self.db_problem is not None)
        except WriterLost as exc:
            self._writer_lost(exc)
            return False
        except StoreError as exc:
            self.db_problem = str(exc)
            self.metrics.scheduler.labels("error").inc()
            log.error("round not run: %s", exc, extra={"fields": {"event": "round_error"}})
            return False
        for note in notes:
            log.warning("%s", note, extra={"fields": {"event": "database"}})
        if notes or self.db_problem is not None:
            self.book = None  # the database may not be the one the digests came from
        return True

    def _writer_lost(self, exc: WriterLost) -> None:
        """Another tracker writes this database now: stop at once, exit 1, write nothing."""
        self.db_problem = str(exc)
        log.critical("%s", exc, extra={"fields": {"event": "round_error"}})
        self.exit_code = 1
        self.request_stop()

    async def _load_verdicts(self) -> None:
        """The verdict gauges from the database: above DOMAIN_SERIES_LIMIT watched names,
        per-domain series only for names neither `present` nor `absent` (the counts cover
        all)."""
        thin = len(self.entries) > DOMAIN_SERIES_LIMIT

        def read() -> tuple[dict[str | None, int], list[tuple[str, str, str]], dict[str, bool]]:
            store = self.store
            return store.headline_totals(), store.verdict_series(thin=thin), store.resolver_up()

        self.metrics.verdicts.load(*await self.db.run(read))

    def _on_progress(self, answered: int) -> None:
        self._progress = answered

    async def refresh_snapshot(self) -> None:
        """Build what the status server shows until the next round (when it is enabled)."""
        if self.readers is None:
            return
        generation = self.snapshot.generation + 1 if self.snapshot else 1
        try:
            self.snapshot = await self.db.run(snapshot.build, self.store, generation)
        except (StoreError, sqlite3.Error) as exc:  # the old one stays; /healthz tells
            log.warning("status snapshot not rebuilt: %s", exc)

    async def _timed_out(self, started: datetime, seconds: float, domains: int) -> None:
        finished = self.clock()
        round_id = await self.db.run(
            self.store.record_timeout,
            started,
            finished,
            domains=domains,
            queries=self._progress,
            interval=self.config.schedule.interval,
        )
        await self.refresh_snapshot()
        collect_garbage()  # a cut-off round leaves its cycles too
        self.metrics.round_timed_out(finished, seconds)
        log.error(
            "round %d cut off after %.1f s (round_timeout %g s): nothing it measured is kept",
            round_id, seconds, self.config.schedule.timeout,
            extra={"fields": {"event": "round", "round": round_id, "status": RoundStatus.TIMEOUT,
                              "seconds": round(seconds, 3), "answered": self._progress}},
        )  # fmt: skip

    # -- health ------------------------------------------------------------------------------

    async def assess(self) -> tuple[Assessment, dict[str, Any] | None]:
        """The /healthz answer: the same rule as `nsdi-tracker health`, plus what only the
        running process knows (a failed commit, a stop under way)."""
        if self.stopping:
            return Assessment(False, "stopping"), None
        if self.db_problem:  # said before reading: the file may be gone
            return Assessment(False, f"database: {self.db_problem}"), None
        if self.snapshot is not None:  # as of the last round: no read per request
            last, measured = self.snapshot.last, self.snapshot.measured
        else:
            last, measured = await self.read(lambda s: (s.last_round(), s.last_round(MEASURED)))
        # What failed when a round last tried to write (above), not the file's mode bits: a
        # file made read-only under a running writer still takes its writes.
        verdict = assess(last, measured, self.config.schedule.interval, self.clock())
        return verdict, last

    async def read(self, fn: Callable[[Store], Any]) -> Any:
        """The status server's reads: on two kept read-only connections in worker threads,
        one read each at a time, so they never wait for the writer (WAL) and never stall the
        event loop."""
        assert self.readers is not None, "reads belong to the status server, which has them"
        # A round under way goes first, for READ_YIELD seconds at most: a short round
        # finishes, and a long sweep (minutes, at a million names) does not shut readers out.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), READ_YIELD)
        return await self.readers.run(fn)
