"""The digest path against the full path: randomised rounds, the same replies, two databases.

Database A skips the names whose digest is the kept one (rounds.digest), with the book kept
between rounds (as the daemon keeps it) or read from the database (as `run --once` does);
database B writes a raw archive, so no name is ever skipped there. After every round both
must hold the same rows: states, transitions, stored replies, the latest fingerprints, the
watchlist's flags and digests, the rounds and the resolvers' health.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from hypothesis import given
from hypothesis import strategies as st
from strategies import replies

from nsdi_tracker.core.evidence import fingerprint
from nsdi_tracker.core.model import Observation
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.rounds.digest import reply_text
from nsdi_tracker.rounds.tracker import commit_staged, staged_round
from nsdi_tracker.settings.config import load_config
from nsdi_tracker.settings.watchlist import load_watchlists
from nsdi_tracker.sim import Zone, answer, nodata, nxdomain, rcode
from nsdi_tracker.sim.script import Script
from nsdi_tracker.store.sqlite import Store

NAMES = [f"d{i:02d}.example" for i in range(30)]
BEHAVIOURS: list[Script] = [
    answer("142.250.74.46"),
    answer("142.250.74.47"),
    answer("142.250.74.46", "142.250.74.47", "2a00:1450:4010:c0e::5d"),
    answer("151.101.1.7", cname=("edge.cdn.example",)),
    answer("10.10.10.10"),  # a bogon: tampered
    nxdomain(),
    nxdomain(soa=False, aa=True),  # forged-looking
    nodata(),
    rcode(2),  # SERVFAIL: unreachable
]

DUMP = {
    "domains": "SELECT name, label, category, watched, digest FROM domains ORDER BY 1",
    "states": "SELECT d.name, s.scope, s.verdict, s.since, s.candidate, s.candidate_count, "
    "s.candidate_since, s.round_id FROM states s JOIN domains d ON d.id = s.domain_id "
    "ORDER BY 1, 2",
    "transitions": "SELECT t.event_id, t.round_id, d.name, t.scope, t.type, t.from_verdict, "
    "t.to_verdict, t.first_seen, t.confirmed_at, t.rounds, t.reason, t.rcode, t.nxdomain, "
    "t.flags, t.addresses, t.authority, t.reference_consensus, t.reference_addresses "
    "FROM transitions t LEFT JOIN domains d ON d.id = t.domain_id ORDER BY 1",
    "deliveries": "SELECT t.event_id, v.sink, v.status FROM deliveries v "
    "JOIN transitions t ON t.id = v.transition_id ORDER BY 1, 2",
    "observations": "SELECT o.round_id, d.name, r.name, o.qtype, o.outcome, o.rcode, "
    "o.addresses, o.fingerprint FROM observations o JOIN domains d ON d.id = o.domain_id "
    "JOIN resolvers r ON r.id = o.resolver_id ORDER BY 1, 2, 3, 4",
    "latest": "SELECT d.name, r.name, l.qtype, l.fingerprint FROM latest l "
    "JOIN domains d ON d.id = l.domain_id JOIN resolvers r ON r.id = l.resolver_id "
    "ORDER BY 1, 2, 3",
    "rounds": "SELECT id, status, domains, queries, transitions, outcomes, negative_name "
    "FROM rounds ORDER BY 1",
    "health": "SELECT scope, state, since, candidate, candidate_count, candidate_since "
    "FROM resolver_states ORDER BY 1",
}


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {table: store.db.execute(sql).fetchall() for table, sql in DUMP.items()}


def write_watchlist(path: Path, names: list[str], labels: dict[str, str]) -> None:
    lines = []
    for name in names:
        lines.append(f'[[entry]]\ndomain = "{name}"')
        if name in labels:
            lines.append(f'label = "{labels[name]}"\ncategory = "news"')
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_digest_path_stores_what_the_full_path_stores(
    sim: Any, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    zones = [Zone(), Zone(), Zone()]  # two national resolvers and a reference
    for zone in zones:
        for name in [*NAMES, "late1.example", "late2.example"]:
            zone.set(name, BEHAVIOURS[0])
    servers = [await sim(z) for z in zones]
    # No zone here is silent, so a long timeout costs nothing; a short one turned a slow
    # moment of a busy machine into a timeout on one path and not the other.
    fast = {"timeout": 5.0, "retries": 0}
    cfg = write_config(
        tmp_path,
        [
            {"name": "nsdi-a", "role": "national", "address": servers[0].address, **fast},
            {"name": "nsdi-b", "role": "national", "address": servers[1].address, **fast},
            {"name": "ref", "role": "reference", "address": servers[2].address, **fast},
        ],
        extra='watchlists = ["watch.toml"]\n[[sink]]\ntype = "log"\npath = "events.ndjson"',
    )
    watchlist = tmp_path / "watch.toml"
    names, labels = list(NAMES), {NAMES[0]: "First"}
    write_watchlist(watchlist, names, labels)
    config = load_config(cfg, KINDS)
    entries = load_watchlists(config.watchlists)
    start = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    books: dict[str, Any] = {"a": None, "b": None}
    skipped = {"a": 0, "b": 0}
    with Store.open(tmp_path / "a.db") as a, Store.open(tmp_path / "b.db") as b:
        for k in range(14):
            _mutate(rng, k, zones, names, labels)
            if k in (6, 10):  # the watchlist changes: names leave, join, get a label
                write_watchlist(watchlist, names, labels)
                entries = load_watchlists(config.watchlists)
            if k == 12:  # the same replies, judged against a sinkhole from now on
                cfg.write_text('sinkholes = ["142.250.74.0/24"]\n' + cfg.read_text())
                config = load_config(cfg, KINDS)
            at = start + timedelta(minutes=k)
            for key, store, raw in (("a", a, None), ("b", b, tmp_path / "raw")):
                book = books[key] if k % 3 else None  # now kept, now read from the database
                staged = await staged_round(
                    config, entries, store, raw_dir=raw, book=book,
                    rng=random.Random(k), now=lambda at=at: at,
                )  # fmt: skip
                commit_staged(config, store, staged)
                books[key] = staged.book
                skipped[key] += staged.book.unchanged
            assert dump(a) == dump(b), f"round {k}"
            watched = a.db.execute("SELECT name FROM domains WHERE watched = 1").fetchall()
            assert sorted(n for (n,) in watched) == sorted(names)
        for store in (a, b):  # the commits write without checking them: every key holds
            assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert skipped["b"] == 0
    assert skipped["a"] > 5 * len(NAMES), skipped  # the digest path was taken, and often


def _mutate(
    rng: random.Random, k: int, zones: list[Zone], names: list[str], labels: dict[str, str]
) -> None:
    """Round k's changes: a few names' replies (most rounds), a reference outage (round 8),
    names leaving and joining and a label (rounds 6 and 10). Rounds 2-4 and 11-13 change no
    reply (in round 12 the config gets a sinkhole), so their names are skipped."""
    zones[2].outage = rcode(5) if k == 8 else None  # the reference fails its controls
    if k in (2, 3, 4, 11, 12, 13):
        return
    for zone in zones:
        for name in rng.sample(names, 4):
            zone.set(name, rng.choice(BEHAVIOURS), rng.choice([None, "A", "AAAA"]))
    if k == 6:
        del names[-3:]
        names.append("late1.example")
        labels[names[1]] = "Second"
    if k == 10:
        names.append("late2.example")
        names.insert(0, names.pop())  # another place in the watchlist
        del labels[NAMES[0]]


OBSERVATIONS = replies(
    transport=st.sampled_from(["udp", "tcp"]),
    latency_ms=st.floats(0, 100),
    cname_chain=st.lists(st.sampled_from(["a.example", "b.example"]), max_size=2).map(tuple),
    min_ttl=st.integers(0, 300),
    ede=st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(["", "a", "a;b", "1:a"])), max_size=2
    ).map(tuple),
)


@given(OBSERVATIONS, OBSERVATIONS)
def test_the_same_reply_text_is_the_same_fingerprint(a: Observation, b: Observation) -> None:
    """A digest covers each reply through reply_text: equal texts mean equal fingerprints
    (what varies from query to query, TTL and latency, is in neither)."""
    if reply_text(a) == reply_text(b):
        assert fingerprint(a) == fingerprint(b)
    if fingerprint(a) != fingerprint(b):
        assert reply_text(a) != reply_text(b)
    same = b._replace(latency_ms=a.latency_ms + 1, min_ttl=(a.min_ttl or 0) + 1)
    assert reply_text(same) == reply_text(b)
