"""A persisted round: measure, decide what changed, commit it, then deliver the events."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nsdi_tracker.config import Config
from nsdi_tracker.events import utcnow
from nsdi_tracker.ledger import RoundPlan, plan_round
from nsdi_tracker.measure import RoundReport, measure
from nsdi_tracker.raw import append_round
from nsdi_tracker.store import Store
from nsdi_tracker.watchlist import Entry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundDone:
    round_id: int
    report: RoundReport
    plan: RoundPlan
    pruned: int


async def persisted_round(
    config: Config,
    entries: Sequence[Entry],
    store: Store,
    *,
    raw_dir: Path | None = None,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
) -> RoundDone:
    """Measure, and write the round with its confirmed transitions and outbox in one go."""
    report = await measure(config, entries, rng=rng, now=now)
    return record_round(config, entries, store, report, raw_dir=raw_dir)


def record_round(
    config: Config,
    entries: Sequence[Entry],
    store: Store,
    report: RoundReport,
    *,
    raw_dir: Path | None = None,
) -> RoundDone:
    """Decide what the measured round changed and commit it (blocking: the daemon runs this
    on its database thread)."""
    plan = plan_round(report, store.tracks(), store.latest(), config.confirm, config.sinks)
    round_id = store.commit_round(plan, entries, config.resolvers)
    raw = raw_dir or config.raw_dir
    if raw is not None:
        try:
            append_round(raw, report, round_id)
        except OSError as exc:  # the database has the round; the raw copy is a bonus
            log.error("cannot append raw observations to %s: %s", raw, exc)
    pruned = 0
    if config.retain_days and store.prune_due(report.finished):
        pruned = store.prune(report.finished - timedelta(days=config.retain_days))
    return RoundDone(round_id, report, plan, pruned)
