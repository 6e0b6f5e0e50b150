"""The daemon's upkeep between rounds: collecting the round's garbage, the round's log line,
and what the scheduler reports of the round job."""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import UTC, datetime

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)

from nsdi_tracker.rounds.tracker import RoundDone
from nsdi_tracker.service.metrics import Metrics

log = logging.getLogger("nsdi_tracker.daemon")  # the daemon's, as before


def collect_garbage() -> None:
    """Free the round's reference cycles now, between rounds.

    The CLI tunes the cyclic collector for sweep speed (`cli.common.arun`: a first generation of
    50,000 allocations, the oldest collected after 100 million), which suits one long round.
    A daemon's rounds each leave a few hundred objects in cycles (the resolver clients, their
    socket pools and 64 KB receive buffers): at that pace they were never collected, and the
    daemon grew by ~165 KB a round (~48 MB a day at the default interval). One collection
    after each round keeps it flat; it takes about a millisecond, the watchlist being frozen
    out of it (gc.freeze at start and after a reload).
    """
    gc.collect()


def log_round(done: RoundDone, seconds: float, backlog: dict[str, int]) -> None:
    r = done.record
    changes = done.changes.shown
    outcomes = " ".join(f"{k}={v}" for k, v in r.outcomes.items())
    log.info(
        "round %d %s in %.1f s: %d domains (%d unchanged), %d queries (%s), %d transitions%s; "
        "deliveries pending %d",
        done.round_id, r.status, seconds, r.domains, done.changes.unchanged, r.queries,
        outcomes or "none",
        r.transitions, (": " + ", ".join(changes)) if changes else "", backlog["pending"],
        extra={"fields": {
            "event": "round", "round": done.round_id, "status": r.status,
            "seconds": round(seconds, 3), "domains": r.domains,
            "unchanged": done.changes.unchanged, "queries": r.queries,
            "outcomes": r.outcomes, "transitions": r.transitions,
            "deliveries_pending": backlog["pending"], "deliveries_failed": backlog["failed"],
        }},
    )  # fmt: skip


def when(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def scheduler_event(event: JobEvent, metrics: Metrics, stopping: bool) -> None:
    """Count and log what APScheduler reports of the round job: an error (unless our own
    stop, `stopping`, cancelled it), a missed run, a run skipped while the last still ran."""
    if event.code == EVENT_JOB_ERROR:
        assert isinstance(event, JobExecutionEvent)
        exc = event.exception
        if isinstance(exc, asyncio.CancelledError) and stopping:
            return  # our own stop cancelled it, and said so: not a failure
        metrics.scheduler.labels("error").inc()
        log.error(
            "round failed: %s: %s", type(exc).__name__, exc,
            extra={"fields": {"event": "round_error", "traceback": event.traceback}},
        )  # fmt: skip
    elif event.code == EVENT_JOB_MISSED:
        assert isinstance(event, JobExecutionEvent)
        metrics.scheduler.labels("missed").inc()
        log.warning(
            "round due at %s was missed (started too late); the next one is on time",
            when(event.scheduled_run_time),
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        assert isinstance(event, JobSubmissionEvent)
        metrics.scheduler.labels("skipped").inc()
        log.warning(
            "round due at %s skipped: the previous round is still running",
            when(event.scheduled_run_times[0] if event.scheduled_run_times else None),
        )
