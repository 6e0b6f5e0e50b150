"""A round's names through every resolver's Lane, judged one by one as their answers complete.

The names stream: at most AHEAD of them are in flight or judged and waiting, and judged names
go to the consumer in batches of BATCH as they are done (in no particular order), so memory
does not grow with the watchlist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, NamedTuple

from nsdi_tracker.core.model import Observation, Verdict
from nsdi_tracker.dns.probe import Lane, ResolverClient
from nsdi_tracker.dns.wire import make_query
from nsdi_tracker.judge.classify import Judgement, ReferenceView
from nsdi_tracker.rounds.digest import DigestBook
from nsdi_tracker.settings.watchlist import Entry

QTYPES: Final = ("A", "AAAA")
BATCH = 1_000  # judged names handed to the consumer at a time
AHEAD = 8 * BATCH  # names taken from the watchlist and not yet handed over, at most
Progress = Callable[[int], None]  # queries answered so far in this round (final answers)
Consumer = Callable[[list["DomainResult"]], Awaitable[None]]


class DomainResult(NamedTuple):
    """A name judged on one round (a NamedTuple: made once a name, and a frozen dataclass's
    __init__ costs several times more in the compiled build)."""

    entry: Entry
    national: Verdict  # the headline from the national resolvers
    reference: ReferenceView
    judgements: dict[str, Judgement]  # per national or observed resolver
    observations: dict[str, tuple[Observation, ...]]  # per resolver: (A, AAAA); () if down
    # Resolvers down this round (failed their controls): not asked about the name, so their
    # judgements say nothing about it. One set shared by every result of the round.
    down: frozenset[str] = frozenset()
    place: int = -1  # its place in the watchlist (-1: not taken from one)
    digest: int = 0  # its digest this round, to be kept if its tracks settle (0: none)


# [entry, observations by (resolver index * len(QTYPES) + type index), answers left to come,
#  the entry's place in the watchlist]
_Slot = list[Any]
Judge = Callable[[Entry, dict[str, tuple[Observation, ...]], int, int], DomainResult]
REFILL: Final = 64  # names skipped as unchanged before more are taken from the watchlist


class Stream:
    """The watchlist through every resolver's Lane, judged name by name as answers complete.

    With a DigestBook, a name whose digest is the known one is counted and dropped as soon as
    its answers are in (see rounds.digest); the others are judged and handed over.
    """

    def __init__(
        self,
        clients: dict[str, ResolverClient],
        judge: Judge,
        entries: Iterable[Entry],
        consume: Consumer,
        progress: Progress | None,
        book: DigestBook | None = None,
    ) -> None:
        self.clients = clients
        self.names = list(clients)
        self.judge = judge
        self.entries = iter(entries)
        self.taken = 0  # names taken from the watchlist
        self.book = book
        self._admitting = False
        self.consume = consume
        self.progress = progress
        self.lanes = [Lane(clients[n], self._deliver, self._fail) for n in self.names]
        self.width = len(QTYPES) * len(self.names)  # a slot per (resolver, type)
        self.ready: list[DomainResult] = []
        self.batches: asyncio.Queue[list[DomainResult] | None] = asyncio.Queue()
        self.admitted = 0  # names taken and not yet consumed
        self.unjudged = 0  # names taken and not yet in `ready`
        self.exhausted = False
        self.finished = False  # the last batch and the end mark are queued
        self.judged = 0
        self.answered = 0
        self.failure: BaseException | None = None
        self.reasks: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        try:
            for lane in self.lanes:
                await lane.open()
            self._admit()
            while True:
                batch = await self.batches.get()
                if self.failure is not None:
                    raise self.failure
                if batch is None:
                    return self.judged
                await self.consume(batch)
                self.admitted -= len(batch)
                self._admit()
        finally:
            for lane in self.lanes:
                lane.cancel()
            for task in self.reasks:
                task.cancel()

    def _admit(self) -> None:
        self._admitting = True
        try:
            self._take()
        finally:
            self._admitting = False
        for lane in self.lanes:
            lane.pump()
        self._maybe_done()

    def _take(self) -> None:
        width = self.width
        while self.admitted < AHEAD and not self.exhausted:
            entry = next(self.entries, None)
            if entry is None:
                self.exhausted = True
                break
            slot: _Slot = [entry, [None] * width, width, self.taken]
            self.taken += 1
            # the questions, made once for every resolver (each send puts its own ID in)
            queries = [make_query(entry.domain, qtype, qid=0) for qtype in QTYPES]
            i = 0
            for lane in self.lanes:
                for query in queries:
                    lane.jobs.append((slot, i, query))
                    i += 1
            self.admitted += 1
            self.unjudged += 1
            if not width:  # every resolver is down this round: nothing to ask
                self._complete(slot)

    def _deliver(self, slot: Any, index: int, obs: Observation) -> None:
        slot[1][index] = obs
        slot[2] -= 1
        self.answered += 1
        if not slot[2]:
            self._complete(slot)

    def _complete(self, slot: Any) -> None:
        """Every answer of a name is in: judge it (after a re-ask, if it looks removed)."""
        try:
            entry, found, _, index = slot
            digest = 0
            if self.book is not None:
                digest = self.book.check(index, entry, found)
                if not digest:
                    self._unchanged()
                    return
            k = len(QTYPES)
            observations: dict[str, tuple[Observation, ...]] = {
                n: tuple(found[k * i : k * i + k]) for i, n in enumerate(self.names)
            }
            result = self.judge(entry, observations, index, digest)
            doubt = [n for n, j in result.judgements.items() if j.verdict is Verdict.REMOVED]
            if doubt:
                task = asyncio.get_running_loop().create_task(self._reask(result, doubt))
                self.reasks.add(task)
                task.add_done_callback(self._reasked)
            else:
                self._ready(result)
        except Exception as exc:  # a bug must end the round, not hang it
            self._fail(exc)

    async def _reask(self, result: DomainResult, names: list[str]) -> None:
        """An NXDOMAIN judged a removal is asked again (fresh sockets) before it counts: one
        forged or transient reply must not make a removal."""
        domain = result.entry.domain
        again = await asyncio.gather(
            *(self.clients[n].query(domain, t, fresh=True) for n in names for t in QTYPES)
        )
        observations = dict(result.observations)
        k = len(QTYPES)
        for i, n in enumerate(names):
            observations[n] = tuple(o._replace(reasked=True) for o in again[k * i : k * i + k])
        # re-asked: its digest is not kept (a later round re-asks it again)
        self._ready(self.judge(result.entry, observations, result.place, 0))

    def _reasked(self, task: asyncio.Task[None]) -> None:
        self.reasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())  # type: ignore[arg-type]

    def _ready(self, result: DomainResult) -> None:
        self.ready.append(result)
        self.unjudged -= 1
        self.judged += 1
        if self.progress is not None:
            self.progress(self.answered)
        if len(self.ready) >= BATCH:
            self.batches.put_nowait(self.ready)
            self.ready = []
        self._maybe_done()

    def _unchanged(self) -> None:
        """A name skipped as unchanged: judged, and no longer taken; more are taken once a
        few have gone (not from inside _admit, which is taking them)."""
        self.unjudged -= 1
        self.judged += 1
        self.admitted -= 1
        if self.progress is not None:
            self.progress(self.answered)
        if not self._admitting and self.admitted <= AHEAD - REFILL:
            self._admit()
        else:
            self._maybe_done()

    def _maybe_done(self) -> None:
        if self.exhausted and not self.unjudged and not self.finished:
            self.finished = True
            if self.ready:
                self.batches.put_nowait(self.ready)
                self.ready = []
            self.batches.put_nowait(None)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self.batches.put_nowait(None)  # wakes run(), which raises it
