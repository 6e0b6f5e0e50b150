"""The real CLI end to end: run --once, status, history, export; kills; a million-row export."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from conftest import run_cli
from test_outbox import SECRET, webhook

from nsdi_tracker.delivery.sinks import SIGNATURE_HEADER, verify
from nsdi_tracker.store.sqlite import CHANGELOG_COLUMNS, Store
from nsdi_tracker.ui.export import csv_row


async def rounds(cfg: Path, n: int) -> None:
    for _ in range(n):
        code, _, err = await run_cli("run", "--once", "-c", str(cfg))
        assert code == 0, err


async def test_removal_and_restore_end_to_end(harness: Any, receiver: Any) -> None:
    """Present, removed for two rounds, back for two: exactly one removed and one restored event
    reach the webhook; status, history and every export format show them."""
    h = await harness(["youtube.com", "meduza.io"], extra=webhook(receiver.url))
    await rounds(h.cfg_path, 2)
    h.remove("youtube.com")
    await rounds(h.cfg_path, 1)
    assert receiver.events() == []  # one sighting is not a removal
    code, out, _ = await run_cli("status", "-c", str(h.cfg_path), "--json")
    doc = json.loads(out)
    yt = next(d for d in doc["domains"] if d["domain"] == "youtube.com")
    assert yt["national"]["verdict"] == "present" and yt["national"]["pending"] == "removed"
    await rounds(h.cfg_path, 1)
    assert [(e["type"], e["domain"]) for e in receiver.events()] == [("removed", "youtube.com")]
    await rounds(h.cfg_path, 1)  # still removed: nothing new
    h.restore("youtube.com")
    await rounds(h.cfg_path, 2)
    events = receiver.events()
    assert [(e["type"], e["scope"]) for e in events] == [
        ("removed", "national"),
        ("restored", "national"),
    ]
    for headers, body in receiver.received:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])

    code, out, _ = await run_cli("history", "youtube.com", "-c", str(h.cfg_path))
    assert code == 0
    assert "present → removed" in out and "removed → present" in out and "NXDOMAIN" in out
    code, out, _ = await run_cli("status", "-c", str(h.cfg_path))
    assert code == 0 and "youtube.com" in out and "present" in out

    dest = h.tmp_path / "changes.csv"
    code, _, err = await run_cli("export", "-c", str(h.cfg_path), "--resolver", "national",
                                 "--domain", "youtube.com", "-o", str(dest))  # fmt: skip
    assert code == 0 and "exported 3" in err
    table = list(csv.DictReader(io.StringIO(dest.read_text(encoding="utf-8"), newline="")))
    assert [r["type"] for r in table] == ["baseline", "removed", "restored"]
    assert [r["event_id"] for r in table[1:]] == [e["id"] for e in events]
    removed = table[1]
    assert removed["rcode"] == "NXDOMAIN" and removed["reference_addresses"] == "142.250.74.46"

    code, out, _ = await run_cli("export", "-c", str(h.cfg_path), "--format", "ndjson",
                                 "--type", "removed")  # fmt: skip
    lines = [json.loads(x) for x in out.splitlines()]
    assert {(x["scope"], x["to"]) for x in lines} == {
        ("national", "removed"),
        ("nsdi-a", "removed"),
    }
    assert all(x["evidence"]["reference"]["consensus"] == "exists" for x in lines)
    code, out, _ = await run_cli("export", "-c", str(h.cfg_path), "--format", "json",
                                 "--since", "1h", "--until", "2099-01-01")  # fmt: skip
    assert len(json.loads(out)) == 2 * 2 + 4  # baselines of 2 names x 2 scopes, 2 x 2 changes


async def test_csv_export_round_trip(harness: Any) -> None:
    """The CSV, parsed back, equals the change log in the database, column for column."""
    h = await harness(["youtube.com", "bbc.com", "dw.com"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        h.remove("bbc.com")
        h.remove("dw.com")
        await h.round(store)
        await h.round(store)
    code, out, _ = await run_cli("export", "-c", str(h.cfg_path))
    assert code == 0 and out.startswith(",".join(CHANGELOG_COLUMNS) + "\r\n")
    parsed = list(csv.reader(io.StringIO(out, newline="")))
    with Store.open_readonly(h.db) as store:
        expected = [csv_row(r) for r in store.changelog()]
    assert parsed[0] == list(CHANGELOG_COLUMNS) and parsed[1:] == expected and len(expected) == 10


async def test_bad_export_arguments(harness: Any) -> None:
    """A bad time is a clear error, exit 2, and no output file is left behind."""
    h = await harness(["youtube.com"])
    with Store.open(h.db) as store:
        await h.round(store)
    dest = h.tmp_path / "out.csv"
    code, _, err = await run_cli("export", "-c", str(h.cfg_path), "--since", "yesterday",
                                 "-o", str(dest))  # fmt: skip
    assert code == 2 and "'yesterday' is not a time" in err and not dest.exists()


async def test_export_of_a_name_never_seen_says_so(harness: Any) -> None:
    """A --domain or --resolver the database has never seen is named on stderr (a typo is not
    an empty history); a known one is not."""
    h = await harness(["youtube.com"])
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
    code, out, err = await run_cli("export", "-c", str(h.cfg_path), "--domain", "youtube.con",
                                   "--resolver", "nsdi-z")  # fmt: skip
    assert code == 0 and out == ",".join(CHANGELOG_COLUMNS) + "\r\n"
    assert f"youtube.con has never been measured in {h.db}" in err
    assert f"{h.db} has no resolver named 'nsdi-z'" in err
    code, out, err = await run_cli("export", "-c", str(h.cfg_path), "--domain", "youtube.com",
                                   "--resolver", "nsdi-a")  # fmt: skip
    assert code == 0 and "never" not in err and "no resolver" not in err
    assert len(out.splitlines()) == 2, out  # the baseline


async def test_kill_at_random_moments(harness: Any, receiver: Any) -> None:
    """SIGKILL run --once at random moments: the database stays sound, the removal is confirmed
    once, and after restarts its event is delivered (repeats only with the same id)."""
    rng = random.Random(int(os.environ.get("KILL_SEED", "2026")))
    receiver.delay = 0.15  # widen the window between sending and recording the delivery
    h = await harness(["youtube.com", "meduza.io"], extra=webhook(receiver.url))
    await rounds(h.cfg_path, 2)
    h.remove("youtube.com")
    killed = 0
    for _ in range(14):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nsdi_tracker", "run", "--once", "-c", str(h.cfg_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.wait_for(proc.wait(), rng.uniform(0.05, 0.8))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it may end as the timer fires
                proc.send_signal(signal.SIGKILL)
            killed += await proc.wait() == -signal.SIGKILL
    assert killed >= 3  # the test must actually kill runs
    await rounds(h.cfg_path, 2)
    with Store.open_readonly(h.db) as store:
        assert store.integrity() == "ok"
        changes = [r for r in store.changelog() if r["type"] != "baseline"]
        assert [(r["domain"], r["scope"], r["type"]) for r in changes] == [
            ("youtube.com", "national", "removed"),
            ("youtube.com", "nsdi-a", "removed"),
        ]
        assert store.backlog()["pending"] == 0 and store.backlog()["failed"] == 0
    ids = {e["id"] for e in receiver.events()}
    assert ids == {changes[0]["event_id"]}


async def test_csv_is_what_the_csv_module_writes(tmp_path: Path) -> None:
    """SQLite formats the CSV lines; byte for byte they are what csv.writer writes, commas,
    quotes, line breaks and empty lists included."""
    path = tmp_path / "odd.db"
    with Store.open(path) as store, store.db.atomic():
        db = store.db
        db.execute(
            "INSERT INTO domains (id, name, label, category, first_seen) "
            "VALUES (1, 'dw.com', ?, 'news, \"foreign\"', 'x')",
            ('Deutsche Welle, "DW"\nRussian service\r',),
        )
        db.execute("INSERT INTO domains (id, name, first_seen) VALUES (2, 'bbc.com', 'x')")
        db.execute(
            "INSERT INTO rounds VALUES (1, 'a', 'b', 'ok', 1, 1, 1, '{}', '{}', 'n.x', NULL, NULL)"
        )
        db.conn.executemany(
            "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict, "
            "to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, "
            "addresses, authority, reference_consensus, reference_addresses, event) "
            "VALUES (?, 1, ?, 'national', 'removed', ?, 'removed', 'f', 'c', 2, ?, 'NXDOMAIN', "
            "'', ?, ?, ?, 'exists', ?, '{}')",
            [
                ("e1", 1, "present", 'bogon, "sinkhole": 10.0.0.1, 10.0.0.2', '["aa","ra"]',
                 '["10.0.0.1","10.0.0.2"]', "SOA a,b.example", '["1.2.3.4"]'),
                ("e2", 2, None, "plain", "[]", "[]", "none", "[]"),
            ],
        )  # fmt: skip
    code, out, err = await run_cli("export", "--db", str(path))
    assert code == 0, err
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(CHANGELOG_COLUMNS)
    with Store.open_readonly(path) as store:
        writer.writerows(csv_row(r) for r in store.changelog())
    assert out == expected.getvalue()
    assert '"Deutsche Welle, ""DW""' in out and ",aa ra,10.0.0.1 10.0.0.2," in out


async def test_a_million_row_export_in_bounded_memory(tmp_path: Path) -> None:
    """Exporting 1,000,000 transitions streams: peak memory stays near a 1,000-row export's."""
    path = tmp_path / "big.db"
    with Store.open(path) as store, store.db.atomic():
        db = store.db
        db.execute("INSERT INTO domains (id, name, first_seen) VALUES (1, 'youtube.com', 'x')")
        db.execute(
            "INSERT INTO rounds VALUES "
            "(1, 'a', 'b', 'ok', 1, 1, 1, '{}', '{}', 'n.example.com', NULL, NULL)"
        )
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
            "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict, "
            "to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, "
            "addresses, authority, reference_consensus, reference_addresses, event) "
            "SELECT 'ev-' || i, 1, 1, 'national', IIF(i <= 1000, 'restored', 'removed'), "
            "'present', 'removed', "
            "printf('2026-02-%02d', 1 + i % 28), printf('2026-02-%02dT%06d', 1 + i % 28, i), 2, "
            "'NXDOMAIN while the reference has it', 'NXDOMAIN', 'ordinary', '[\"ra\"]', '[]', "
            "'SOA com', 'exists', '[\"142.250.74.46\"]', '{}' FROM n"
        )
    probe = (
        "import resource, sys; from nsdi_tracker.cli import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )

    async def peak(*extra: str) -> tuple[int, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", probe, "export", "--db", str(path), *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines = 0
        assert proc.stdout is not None and proc.stderr is not None
        async for _ in proc.stdout:
            lines += 1
        err = (await proc.stderr.read()).decode()
        assert await proc.wait() == 0, err
        return lines, int(err.split()[-1])

    small_lines, small_kb = await peak("--type", "restored")
    big_lines, big_kb = await peak()
    assert big_lines == 1_000_001 and small_lines == 1_001
    assert big_kb < small_kb + 20_000, (small_kb, big_kb)


async def test_raw_observations_and_cli_errors(harness: Any) -> None:
    """--raw appends every observation as gzip NDJSON; history of an unknown
    name exits 1."""
    import gzip

    h = await harness(["youtube.com", "meduza.io"])
    raw = h.tmp_path / "raw"
    for _ in range(2):
        code, _, err = await run_cli("run", "--once", "-c", str(h.cfg_path), "--raw", str(raw))
        assert code == 0, err
    (day,) = raw.iterdir()
    with gzip.open(day, "rt", encoding="utf-8") as f:
        lines = [json.loads(x) for x in f]
    # per round: 2 resolvers x (2 controls + 1 negative + 2 names x 2 types)
    assert len(lines) == 2 * 2 * (3 + 4)
    assert {x["round"] for x in lines} == {1, 2}
    assert {x["kind"] for x in lines} == {"control", "negative", "watch"}
    assert all(x["at"].endswith("Z") and "rcode" in x for x in lines)

    code, _, err = await run_cli("history", "never-seen.org", "-c", str(h.cfg_path))
    assert code == 1 and "never been measured" in err
