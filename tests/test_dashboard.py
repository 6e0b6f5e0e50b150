"""The dashboard: frames drawn from seeded databases at fixed widths, a 5,000-name database
summarised, and the live view in a real terminal (tmux) while a daemon writes."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST, run_cli
from rich.console import Console

from nsdi_tracker.core.clock import iso
from nsdi_tracker.sim import answer
from nsdi_tracker.store.sqlite import Store
from nsdi_tracker.ui.dashboard import read, render

T0 = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)


def frame(db: Path, width: int, height: int | None = None, now: datetime | None = None) -> str:
    snap = read(db, now or T0 + timedelta(minutes=36), 300)
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(render(snap, width, height))
    return console.export_text()


def row(text: str, domain: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(domain + " "))


@pytest.fixture
async def seeded(harness: Any) -> Path:
    """Eight rounds five minutes apart: youtube.com removed from round 3, a CDN name
    answering elsewhere from round 4, bbc.com seen removed once in the last round (pending),
    meduza.io present throughout."""
    h = await harness(["youtube.com", "meduza.io", "bbc.com", "cdn.example"])
    with Store.open(h.db) as store:
        for i in range(8):
            if i == 2:
                h.remove("youtube.com")
            if i == 3:
                h.nat.set("cdn.example", answer("151.101.65.140"))
            if i == 7:
                h.remove("bbc.com")
            at = T0 + timedelta(minutes=5 * i)
            await h.round(store, now=lambda at=at: at)
    return h.db


def test_narrow_frame_puts_removals_first_with_history(seeded: Path) -> None:
    """At 80 columns: nothing wider, removed before differs before present, short labels, a
    12-round history strip in which the removal stands out, the pending change flagged."""
    text = frame(seeded, 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("nsdi-tracker ")
    assert "last round #8 ok 1m ago · next in ~4m · resolvers 2/2 up" in lines[1]
    assert "headline: 1 removed, 1 differs, 2 present" in text
    order = [line.split()[0] for line in lines if line.split()[:1] and "." in line.split()[0]]
    assert order[:4] == ["youtube.com", "cdn.example", "bbc.com", "meduza.io"]
    yt = row(text, "youtube.com")
    # Baseline confirmed in round 2; the removal, first seen in round 3, confirmed in 4.
    assert "REMOVED" in yt and yt.rstrip().endswith(" ▂▂█████")
    assert row(text, "cdn.example").rstrip().endswith(" ▂▂▂▃▃▃▃")
    assert "→REMOVED?" in row(text, "bbc.com")
    assert "present → removed" in text and "present → differs" in text
    assert "resolvers, last hour" in text and "nsdi-a" in text


def test_a_down_resolver_is_one_line_and_a_held_column(seeded: Path) -> None:
    """nsdi-a down (confirmed): the header gives the outage one line, its column says DOWN
    and its verdicts are marked held; its resolver_down is one `*` row of the recent
    transitions, not a row per name."""
    with Store.open(seeded) as store, store.db.atomic():
        store.db.execute(
            "UPDATE resolver_states SET state = 'down', since = ? WHERE scope = 'nsdi-a'",
            (iso(T0 + timedelta(minutes=30)),),
        )
        event = {"evidence": None}
        store.db.execute(
            "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, from_verdict, "
            "to_verdict, first_seen, confirmed_at, rounds, reason, rcode, nxdomain, flags, "
            "addresses, authority, reference_consensus, reference_addresses, event) VALUES "
            "('e', 8, NULL, 'nsdi-a', 'resolver_down', 'up', 'down', ?, ?, 2, 'x', 'TIMEOUT', "
            "'', '[]', '[]', 'none', '', '[]', ?)",
            (iso(T0 + timedelta(minutes=30)), iso(T0 + timedelta(minutes=35)), str(event)),
        )
    text = frame(seeded, 80)
    assert "resolvers: nsdi-a DOWN 6m (its verdicts held)" in text
    assert "nsdi-a DOWN" in text.splitlines()[4]  # the matrix heading
    assert row(text, "youtube.com").count("⏸") == 1  # nsdi-a's cell, not the headline's
    recent = [line for line in text.splitlines() if " up → down" in line]
    assert len(recent) == 1 and recent[0].split()[2:4] == ["*", "nsdi-a"]
    assert "REMOVED⏸ 26m" in row(text, "youtube.com")  # the verdict's age, as before
    assert "removed⏸ 26m" in row(frame(seeded, 160), "youtube.com")


def test_wide_frame_spells_verdicts_and_shows_more_history(seeded: Path) -> None:
    """At 160 columns: full verdict names with their ages and a 24-round strip."""
    text = frame(seeded, 160)
    assert "last 24 rounds" in text
    yt = row(text, "youtube.com")
    assert "removed 26m" in yt  # first seen in round 3, at 12:10
    assert "present 36m" in row(text, "meduza.io")
    assert max(len(line) for line in text.splitlines()) <= 160


def five_thousand(db: Path, pending: int | None = None) -> Path:
    """One round over 5,000 names, every 500th removed; name `pending` with a pending change."""
    with Store.open(db) as store, store.db.atomic():
        at = iso(T0)
        store.db.execute(
            "INSERT INTO rounds VALUES "
            "(1, ?, ?, 'ok', 5000, 20000, 0, '{}', '{}', 'x', NULL, NULL)",
            (at, at),
        )
        store.db.conn.executemany(
            "INSERT INTO domains (id, name, watched, first_seen) VALUES (?, ?, 1, ?)",
            ((i, f"name{i:04d}.ru", at) for i in range(5000)),
        )
        store.db.conn.executemany(
            "INSERT INTO states (domain_id, scope, verdict, since, round_id, candidate) "
            "VALUES (?, 'national', ?, ?, 1, ?)",
            (
                (
                    i,
                    "removed" if i % 500 == 7 else "present",
                    at,
                    "absent" if i == pending else None,
                )
                for i in range(5000)
            ),
        )
    return db


def test_five_thousand_domains_are_summarised(tmp_path: Path) -> None:
    """With 5,000 names in a 40-line terminal: the removed ones are all shown, the rest is
    one summary line, and the frame fits."""
    db = five_thousand(tmp_path / "big.db")
    t0 = time.perf_counter()
    text = frame(db, 100, height=40, now=T0 + timedelta(minutes=1))
    took = time.perf_counter() - t0
    lines = text.splitlines()
    assert len(lines) <= 40
    shown = [line.split()[0] for line in lines if line.startswith("name")]
    assert shown[:10] == [f"name{i:04d}.ru" for i in range(7, 5000, 500)]
    assert any(line.startswith("+ 4,9") and "present" in line for line in lines)
    assert "headline: 10 removed, 4990 present" in text
    assert took < 5, took  # the performance target lives in the benchmark


async def tmux(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "tmux", "-L", f"nsdi-test-{os.getpid()}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def until(pred: Any, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = await tmux("capture-pane", "-p", "-t", "dash")
        if pred(screen):
            return screen
        assert time.monotonic() < deadline, screen
        await asyncio.sleep(0.2)


async def test_live_dashboard_in_a_real_terminal(harness: Any, daemon: Any) -> None:
    """In tmux: the dashboard starts full-screen, redraws as the daemon records rounds, and
    Ctrl-C leaves it with exit 0, the alternate screen closed and the shell usable."""
    h = await harness(["youtube.com", "meduza.io"], extra=FAST)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(2)
    await tmux("new-session", "-d", "-s", "dash", "-x", "100", "-y", "30", "sh")
    try:
        cmd = f"{sys.executable} -m nsdi_tracker dashboard -c {h.cfg_path} --refresh 0.3"
        await tmux("send-keys", "-t", "dash", f"{cmd}; echo exit-$?", "Enter")
        first = await until(lambda s: "last round #" in s and "youtube.com" in s)
        n = int(first.split("last round #")[1].split()[0])
        await until(lambda s: f"last round #{n + 2} " in s)  # it redraws on its own
        assert (await tmux("display", "-p", "-t", "dash", "#{alternate_on}")).strip() == "1"
        await tmux("send-keys", "-t", "dash", "C-c")
        after = await until(lambda s: "exit-0" in s)
        assert "last round #" not in after  # the frame went with the alternate screen
        assert (await tmux("display", "-p", "-t", "dash", "#{alternate_on}")).strip() == "0"
    finally:
        await tmux("kill-server")
    assert await d.stop() == 0


def screen_frame(db: Path, width: int, height: int, now: datetime) -> str:
    """A frame read for a screen: only the domains that fit are read."""
    snap = read(db, now, 300, (width, height))
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(render(snap, width, height))
    return console.export_text()


@pytest.mark.parametrize(("width", "height"), [(80, 12), (80, 40), (160, 14)])
def test_screen_read_draws_the_same_frame(seeded: Path, width: int, height: int) -> None:
    """Reading only what fits the screen (chosen in SQL) draws the frame that reading every
    domain and choosing in Python draws."""
    now = T0 + timedelta(minutes=36)
    assert screen_frame(seeded, width, height, now) == frame(seeded, width, height, now)


def test_screen_read_of_many_domains(tmp_path: Path) -> None:
    """5,000 names, 40 lines: the screen read shows the same frame as the whole read."""
    db = five_thousand(tmp_path / "big.db", pending=42)
    now = T0 + timedelta(minutes=1)
    text = screen_frame(db, 100, 40, now)
    assert text == frame(db, 100, height=40, now=now)
    assert "name0042.ru" in text  # pending: worth a row though present
    assert "headline: 10 removed, 4990 present" in text


def test_a_stale_last_round_is_said(seeded: Path) -> None:
    """More than two intervals after the last round the header says so, in place of the round
    line; within two intervals it does not."""
    fresh = frame(seeded, 100, now=T0 + timedelta(minutes=36))
    assert "rounds are due every" not in fresh and "last round #8 ok" in fresh
    old = frame(seeded, 100, now=T0 + timedelta(hours=2))
    assert "last round 1h ago: rounds are due every 5 min; is the daemon running?" in old


async def test_status_says_a_stale_last_round(harness: Any) -> None:
    """`status` says when the last round is more than two intervals old: the interval comes
    from the config, or from the round (the daemon's rounds keep theirs); with --db alone and a
    `run --once` round (no interval kept) it cannot tell."""
    h = await harness(["youtube.com"])
    with Store.open(h.db) as store:
        await h.round(store, now=lambda: T0)  # long before now
    code, out, err = await run_cli("status", "-c", str(h.cfg_path))
    assert code == 0, err
    assert "rounds are due every 5 min; is the daemon running?" in " ".join(out.split())
    code, out, _ = await run_cli("status", "--db", str(h.db))
    assert code == 0 and "rounds are due" not in out
    with Store.open(h.db) as store:  # as the daemon keeps it
        store.db.execute("UPDATE rounds SET interval = 90")
        store.db.conn.commit()
    code, out, _ = await run_cli("status", "--db", str(h.db))
    assert "rounds are due every 1.5 min; is the daemon running?" in " ".join(out.split())


SMALL_SITES = [f"news-site-{i:02d}.example" for i in range(16)]  # 20 characters each
SMALL_WORDS = {"REMOVED", "TAMPER", "PARTIAL", "unreach", "differs", "absent", "ok", "?", "FORGED"}


def small_screen_db(db: Path) -> Path:
    """One round over 16 twenty-character names, judged on two national resolvers and one
    observed (and a reference), a mix of verdicts."""
    at = iso(T0)
    with Store.open(db) as store, store.db.atomic():
        store.db.execute(
            "INSERT INTO rounds VALUES (1, ?, ?, 'ok', 16, 128, 0, '{}', '{}', 'x', NULL, NULL)",
            (at, at),
        )
        for i, (name, role) in enumerate(
            [("nsdi-a", "national"), ("nsdi-b", "national"), ("ru-public", "observed"),
             ("reference", "reference")]
        ):  # fmt: skip
            store.db.execute(
                "INSERT INTO resolvers (id, name, role, transport, address, first_seen) "
                "VALUES (?, ?, ?, 'udp', '127.0.0.1', ?)",
                (i + 1, name, role, at),
            )
        for i, name in enumerate(SMALL_SITES):
            store.db.execute(
                "INSERT INTO domains (id, name, watched, first_seen) VALUES (?, ?, 1, ?)",
                (i, name, at),
            )
            verdict = ("removed", "tampered", "present", "differs")[i % 4]
            for scope in ("national", "nsdi-a", "nsdi-b", "ru-public"):
                store.db.execute(
                    "INSERT INTO states (domain_id, scope, verdict, since, round_id) "
                    "VALUES (?, ?, ?, ?, 1)",
                    (i, scope, verdict, at),
                )
    return db


def domain_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("news-site-")]


def test_an_80x24_frame_keeps_twelve_rows_with_whole_words(tmp_path: Path) -> None:
    """At 80x24 with three judged resolvers: at least 12 domain rows, each name whole (the
    domain column keeps 20 characters), every cell a whole short word, and the rest one
    summary line that widens no column."""
    db = small_screen_db(tmp_path / "small.db")
    text = frame(db, 80, height=24, now=T0 + timedelta(minutes=1))
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    rows = domain_lines(text)
    assert len(rows) >= 12, text
    for line in rows:
        words = line.split()[1:5]  # national (its age follows) and three resolvers
        assert words[0] in SMALL_WORDS and "…" not in line, line
    assert any(line.startswith("+ ") and "more:" in line for line in lines)


async def test_an_80x24_terminal_shows_twelve_rows(tmp_path: Path) -> None:
    """The same in a real 80x24 terminal (tmux): the dashboard fits, 12 rows or more."""
    db = small_screen_db(tmp_path / "small.db")
    await tmux("new-session", "-d", "-s", "dash", "-x", "80", "-y", "24", "sh")
    try:
        cmd = f"{sys.executable} -m nsdi_tracker dashboard --db {db} --refresh 0.3"
        await tmux("send-keys", "-t", "dash", cmd, "Enter")
        screen = await until(lambda s: len(domain_lines(s)) >= 12)
        assert all("…" not in line and len(line) <= 80 for line in domain_lines(screen))
        await tmux("send-keys", "-t", "dash", "C-c")
    finally:
        await tmux("kill-server")


def test_a_forged_nxdomain_is_visible_in_its_cell(tmp_path: Path) -> None:
    """A removal confirmed on a forged NXDOMAIN says so in its cell: FORGED where the cell is
    narrow, `removed (forged)` where it is wide; an ordinary one stays REMOVED."""
    db = small_screen_db(tmp_path / "small.db")
    at = iso(T0)
    with Store.open(db) as store, store.db.atomic():
        for domain_id, label in ((0, "forged"), (4, "ordinary")):  # both removed everywhere
            store.db.execute(
                "INSERT INTO transitions (event_id, round_id, domain_id, scope, type, "
                "from_verdict, to_verdict, first_seen, confirmed_at, rounds, reason, rcode, "
                "nxdomain, flags, addresses, authority, reference_consensus, "
                "reference_addresses, event) VALUES (?, 1, ?, 'ru-public', 'removed', "
                "'present', 'removed', ?, ?, 2, 'x', 'NXDOMAIN', ?, '[]', '[]', 'none', "
                "'exists', '[]', '{}')",
                (f"e{domain_id}", domain_id, at, at, label),
            )
    now = T0 + timedelta(minutes=1)
    narrow = frame(db, 80, height=24, now=now)
    assert row(narrow, SMALL_SITES[0]).split()[1:5] == ["REMOVED", "1m", "REMOVED", "REMOVED"]
    assert row(narrow, SMALL_SITES[0]).split()[5] == "FORGED"
    assert "FORGED" not in row(narrow, SMALL_SITES[4])
    assert "removed (forged) 1m" in row(frame(db, 160, height=40, now=now), SMALL_SITES[0])
    with Store.open_readonly(db) as store:
        labels = {(r["domain"], r["scope"]): r["nxdomain"] for r in store.status()}
    assert labels[(SMALL_SITES[0], "ru-public")] == "forged"
    assert labels[(SMALL_SITES[0], "nsdi-a")] is None
