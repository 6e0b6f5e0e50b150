"""A persisted round: sweep the names, stage what changed batch by batch, commit it in one go.

Nothing grows with the watchlist: each batch of judged names is planned against its own
stored tracks and fingerprints, staged and dropped; the commit then writes the staged round in
one transaction. Events are in the outbox before anyone is told about them.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from nsdi_tracker.core.clock import iso, utcnow
from nsdi_tracker.rounds.digest import DigestBook
from nsdi_tracker.rounds.ledger import plan_batch, plan_health, round_record
from nsdi_tracker.rounds.measure import RoundInfo, sweep
from nsdi_tracker.rounds.raw import RawRound
from nsdi_tracker.rounds.stream import DomainResult, Progress
from nsdi_tracker.settings.config import Config
from nsdi_tracker.settings.watchlist import Entry
from nsdi_tracker.store.dbthread import INLINE, DbThread
from nsdi_tracker.store.protocols import RoundStore
from nsdi_tracker.store.records import BatchPlan, HealthPlan, RoundRecord

log = logging.getLogger("nsdi_tracker.tracker")  # its name since 0.1: filters use it

SHOWN = 10  # transitions a round names in its summary line
QUEUED_KEPT = 10_000  # ids of queued events a round hands back


@dataclass
class Changes:
    """What a round changed, in bounded memory (a first sweep confirms millions of baselines)."""

    transitions: int = 0
    delivering: int = 0  # transitions with at least one delivery
    by_type: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, scope)
    shown: list[str] = field(default_factory=list)  # "type domain (scope)", the first SHOWN
    queued: list[str] = field(default_factory=list)  # ids of events for sinks, the first 10,000
    tracks: int = 0  # (domain, scope) states written: confirmed or pending changes
    unchanged: int = 0  # names skipped: their digest was the kept one (rounds.digest)
    summary: bool = False  # the round's summary is queued for a fleet's collector

    def add(self, plan: BatchPlan | HealthPlan) -> None:
        """Count a batch's changes; a round's health goes first in what is shown."""
        health = isinstance(plan, HealthPlan)
        ts = plan.transitions  # thousands a batch in a first sweep: one pass, the rest sliced
        self.transitions += len(ts)
        self.by_type.update([(str(t.change.type), t.scope) for t in ts])
        sending = [t.event_id for t in ts if t.sinks]
        self.delivering += len(sending)
        self.queued += sending[: QUEUED_KEPT - len(self.queued)]
        first = ts if health else ts[: max(0, SHOWN - len(self.shown))]
        shown = [f"{t.change.type} {t.domain or '*'} ({t.scope})" for t in first]
        self.shown = (shown + self.shown)[:SHOWN] if health else self.shown + shown
        if not health:
            self.tracks += len(plan.tracks)


@dataclass(frozen=True, slots=True)
class Staged:
    """A swept round whose changes wait in the store's staging tables."""

    round_id: int
    info: RoundInfo
    changes: Changes
    raw: RawRound | None
    book: DigestBook  # the names' digests, this round's kept when it is committed


@dataclass(frozen=True, slots=True)
class RoundDone:
    round_id: int
    info: RoundInfo
    record: RoundRecord
    changes: Changes
    pruned: int


async def persisted_round(
    config: Config,
    entries: Sequence[Entry],
    store: RoundStore,
    *,
    db: DbThread = INLINE,
    raw_dir: Path | None = None,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
) -> RoundDone:
    """Sweep and commit one round."""
    staged = await staged_round(config, entries, store, db=db, raw_dir=raw_dir, rng=rng, now=now)
    return await db.run(commit_staged, config, store, staged)


async def staged_round(
    config: Config,
    entries: Sequence[Entry],
    store: RoundStore,
    *,
    db: DbThread = INLINE,
    raw_dir: Path | None = None,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
    book: DigestBook | None = None,
) -> Staged:
    """Sweep the names, planning and staging each batch on the database thread while the
    next answers come in. Cancelled, it leaves nothing in the database.

    Names whose digest is the one kept (rounds.digest) are skipped; `book`: the digests the
    last round of these very `entries` left (the daemon's), else they are read from the
    store. A raw archive wants every reply: with one, no name is skipped."""
    round_id = await db.run(store.begin_round)
    if book is None or not book.fits(entries):
        book = await db.run(_load_book, entries, store)
    roles = {r.name: r.role for r in config.resolvers}
    raw: RawRound | None = None
    directory = raw_dir or config.raw_dir
    if directory is not None:
        try:
            raw = RawRound(directory, round_id, roles)
        except OSError as exc:  # the database gets the round; the raw copy is a bonus
            log.error("cannot write raw observations to %s: %s", directory, exc)
    book.skipping = raw is None
    changes = Changes()

    def stage(batch: list[DomainResult]) -> BatchPlan:
        nonlocal raw
        at = now()
        tracks, latest = store.lookup([r.entry.domain for r in batch])
        plan = plan_batch(batch, roles, tracks, latest, at, config.confirm, config.sinks)
        store.stage(plan)
        for index, digest in plan.digests:
            book.keep(index, digest)
        if raw is not None:
            try:
                raw.add(batch, iso(at))
            except OSError as exc:
                log.error("cannot write raw observations to %s: %s", raw.partial, exc)
                raw.discard()
                raw = None
        return plan

    async def consume(batch: list[DomainResult]) -> None:
        changes.add(await db.run(stage, batch))

    try:
        info = await sweep(config, entries, consume, rng=rng, now=now, progress=progress, book=book)
    except BaseException:
        if raw is not None:
            raw.discard()
        raise
    changes.unchanged = book.unchanged
    return Staged(round_id, info, changes, raw, book)


def _load_book(entries: Sequence[Entry], store: RoundStore) -> DigestBook:
    return DigestBook.load(entries, store.digests())


def commit_staged(
    config: Config, store: RoundStore, staged: Staged, *, scheduled: bool = False
) -> RoundDone:
    """Commit a staged round (blocking: the daemon runs this on its database thread), with
    what it says of the resolvers' own health; `scheduled`: the daemon's, so the round keeps
    the interval it is due on."""
    info = staged.info
    store.guard()  # still this process's database, right before writing to it
    health = plan_health(info, store.lookup_health(), info.started, config.confirm, config.sinks)
    staged.changes.add(health)
    interval = config.schedule.interval if scheduled else None
    record = round_record(info, staged.changes.transitions, interval)
    summary_sink = config.fleet.name if config.fleet else None  # a probe sends its rounds
    store.commit_round(
        staged.round_id, record, config.resolvers, health, summary_sink, staged.book.gone
    )
    staged.book.committed()
    staged.changes.summary = summary_sink is not None
    if staged.raw is not None:
        try:
            staged.raw.finish(staged.info)
        except OSError as exc:
            log.error("cannot append raw observations to %s: %s", staged.raw.directory, exc)
            staged.raw.discard()
    pruned = 0
    finished = staged.info.finished
    if config.retain_days and store.prune_due(finished):
        pruned = store.prune(finished - timedelta(days=config.retain_days))
    return RoundDone(staged.round_id, staged.info, record, staged.changes, pruned)
