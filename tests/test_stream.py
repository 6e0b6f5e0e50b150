"""A streamed round: names go through in bounded batches, each batch is staged, and the commit
writes the whole round once; a round cut off leaves nothing; the raw copy has every reply."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from nsdi_tracker.rounds import measure, stream
from nsdi_tracker.rounds.tracker import persisted_round
from nsdi_tracker.settings.watchlist import Entry, load_watchlists
from nsdi_tracker.sim import answer
from nsdi_tracker.store.sqlite import Store

NAMES = [f"n{i:03d}.example" for i in range(120)]


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_round_streams_in_bounded_batches(harness: Any, monkeypatch: Any) -> None:
    """With batches of 7 and at most 20 names taken ahead, 120 names are judged in 18 batches,
    never more than 20 taken at once, and every name lands in the database."""
    monkeypatch.setattr(stream, "BATCH", 7)
    monkeypatch.setattr(stream, "AHEAD", 20)
    taken: list[int] = []  # names taken from the watchlist and not yet consumed, at each take
    sizes: list[int] = []
    h = await harness(NAMES)
    config = h.config()
    real = measure.sweep

    async def spy(*args: Any, **kw: Any) -> Any:
        consume = args[2]

        def entries() -> Iterator[Entry]:
            for entry in args[1]:
                taken.append(len(taken) + 1 - sum(sizes))
                yield entry

        async def counting(batch: list[Any]) -> None:
            sizes.append(len(batch))
            await consume(batch)

        return await real(args[0], entries(), counting, **kw)

    monkeypatch.setattr("nsdi_tracker.rounds.tracker.sweep", spy)
    with Store.open(h.db) as store:
        done = await persisted_round(config, load_watchlists(config.watchlists), store)
        assert max(taken) == 20
        assert sum(sizes) == 120 and len(sizes) == 18 and max(sizes) == 7
        controls = 2 * (len(config.controls) + 1)  # and the negative control, per resolver
        assert done.record.domains == 120 and done.record.queries == 120 * 4 + controls
        assert count(store, "domains") == 120
        assert count(store, "states") == 120 * 2  # national and nsdi-a
        assert count(store, "observations") == 120 * 4
        assert done.changes.transitions == 0 and done.changes.tracks == 240  # pending
        done = await persisted_round(config, load_watchlists(config.watchlists), store)
        assert done.changes.transitions == 240 and len(done.changes.shown) == 10  # baselines
        assert count(store, "transitions") == 240 and count(store, "observations") == 120 * 4


async def test_cut_off_round_leaves_nothing(harness: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """A round cancelled after some batches were staged writes no row; the next round is
    whole, and its raw file has only its own lines."""
    monkeypatch.setattr(stream, "BATCH", 7)
    monkeypatch.setattr(stream, "AHEAD", 20)
    staged: list[int] = []
    real_stage = Store.stage

    def stage(self: Store, plan: Any) -> None:
        staged.append(len(plan.watched))
        real_stage(self, plan)

    monkeypatch.setattr(Store, "stage", stage)
    h = await harness(NAMES)
    config = h.config()
    entries = load_watchlists(config.watchlists)
    for name in NAMES:  # slow: 20 names at a time, 0.2 s each
        h.nat.set(name, answer(h.ADDR, delay=0.2))
    raw = tmp_path / "raw"
    with Store.open(h.db) as store:
        task = asyncio.ensure_future(persisted_round(config, entries, store, raw_dir=raw))
        await asyncio.sleep(0.8)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0 < sum(staged) < 120  # cut off half-way, with batches already staged
        assert count(store, "rounds") == count(store, "states") == 0
        assert count(store, "observations") == count(store, "domains") == 0
        assert not list(raw.glob(".round-*"))  # the partial raw file is gone
        for name in NAMES:
            h.restore(name)
        h.remove(NAMES[0])
        done = await persisted_round(config, entries, store, raw_dir=raw)
        assert done.round_id == 1 and count(store, "observations") == 120 * 4
    (day,) = raw.glob("observations-*.ndjson.gz")
    with gzip.open(day, "rt") as f:
        lines = [json.loads(line) for line in f]
    kinds = [x["kind"] for x in lines]
    assert kinds.count("watch") == 120 * 4 and kinds.count("negative") == 2
    assert {x["round"] for x in lines} == {1}
    gone = [x for x in lines if x["qname"] == NAMES[0] and x["resolver"] == "nsdi-a"]
    assert {x["outcome"] for x in gone} == {"nxdomain"}
    assert all(x["reasked"] for x in gone)  # asked again on a fresh socket before it counted


@pytest.mark.parametrize("where", ["judge", "reply"])
async def test_a_bug_ends_the_round_instead_of_hanging_it(
    harness: Any, monkeypatch: Any, where: str
) -> None:
    """An exception while judging a name, or while a pooled reply is read and handed over,
    ends the round with that exception at once; nothing is written. (The seam is the round's
    side of the hand-over: the resolver client may be compiled, and a compiled class cannot
    be patched.)"""
    h = await harness(NAMES[:30])
    config = h.config()

    def boom(*args: Any, **kw: Any) -> Any:
        raise RuntimeError(f"bug in {where}")

    if where == "judge":
        monkeypatch.setattr(measure, "Judging", lambda *a: SimpleNamespace(judge=boom))
    else:
        monkeypatch.setattr(stream.Stream, "_deliver", boom)
    with Store.open(h.db) as store:
        entries = load_watchlists(config.watchlists)
        with pytest.raises(RuntimeError, match=f"bug in {where}"):
            await asyncio.wait_for(persisted_round(config, entries, store), 5)
        assert count(store, "rounds") == 0
