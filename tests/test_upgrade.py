"""A database written by release 0.1.0 (tests/fixtures) upgrades in place: every recorded
row kept as it was, and the next rounds track resolver health in it."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from conftest import run_cli

from nsdi_tracker.sim import silent
from nsdi_tracker.store.sqlite import Store, migrations

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0.db"
TABLES = ("resolvers", "domains", "rounds", "states", "transitions", "observations", "latest",
          "deliveries")  # fmt: skip


# The columns release 0.1.0 had, in tables later migrations gave more
COLUMNS = {
    "rounds": "id, started, finished, status, domains, queries, transitions, outcomes, health, "
    "negative_name, headline",
    "deliveries": "id, transition_id, sink, status, attempts, created, next_attempt, "
    "last_attempt, last_error, delivered",
    "domains": "id, name, label, category, watched, first_seen",
}


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of release 0.1.0 (its columns), in id order."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {
            t: conn.execute(f"SELECT {COLUMNS.get(t, '*')} FROM {t} ORDER BY 1, 2").fetchall()
            for t in TABLES
        }
    finally:
        conn.close()


async def test_release_0_1_0_database_upgrades_and_keeps_its_history(
    tmp_path: Path, harness: Any
) -> None:
    """m004 applies once to a 0.1.0 database: every row of every table is kept (the outage's
    per-name `unreachable` and repeated `removed` rows too: history is never rewritten), the
    change log and the views read as before, and new rounds record a resolver's health."""
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    before = dump(db)
    assert len(before["transitions"]) == 77
    repeated = [r for r in before["transitions"] if r[4] == "nsdi-b" and r[5] == "removed"]
    assert len(repeated) > 5  # the removals it announced a second time after the outage
    with Store.open(db) as store:
        assert [m.name for m in migrations.applied(store.db)][-1] == "m008_reply_evidence"
        assert store.integrity() == "ok"
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        old_log = list(store.changelog())
    assert dump(db) == before
    with contextlib.closing(sqlite3.connect(db)) as conn:  # later migrations' columns: empty
        added = conn.execute(
            "SELECT (SELECT COUNT(*) FROM rounds WHERE interval IS NOT NULL), "
            "(SELECT COUNT(*) FROM deliveries WHERE summary_id IS NOT NULL), "
            "(SELECT COUNT(*) FROM domains WHERE digest IS NOT NULL)"
        ).fetchone()
    assert added == (0, 0, 0)
    assert len(old_log) == 77 and all(r["domain"] for r in old_log)
    with Store.open(db) as store:  # a second open applies nothing again
        assert len(migrations.applied(store.db)) == 8
        # a reply stored whole before m008 reads back through `replies` as it is
        replies = list(store.db.execute("SELECT observation_id, evidence FROM replies ORDER BY 1"))
    old_replies = [(r[0], r[-1]) for r in before["observations"]]
    assert replies == old_replies and len(old_replies) > 10

    # The upgraded database keeps working: a resolver that goes down is one row.
    h = await harness(["youtube.com"], extra="")
    cfg = h.cfg_path.read_text().replace('database = "db/t.db"', f'database = "{db}"')
    cfg = cfg.replace('name = "nsdi-a"', 'name = "nsdi-a"\ntimeout = 0.3\nretries = 0')
    h.cfg_path.write_text(cfg)
    with Store.open(db) as store:
        for _ in range(2):
            await h.round(store)
        h.nat.outage = silent()
        for _ in range(2):
            await h.round(store)
        new = list(store.changelog(after=old_log[-1]["transition_id"]))
    assert [(t["type"], t["domain"], t["scope"]) for t in new if t["domain"] is None] == [
        ("resolver_down", None, "nsdi-a"),
        ("resolver_down", None, "national"),
    ]
    code, out, err = await run_cli("history", "--db", str(db), "youtube.com")
    assert code == 0, err
    assert "resolver_down" in out and "the resolver itself" in out
