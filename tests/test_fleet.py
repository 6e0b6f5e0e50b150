"""A probe and its collector end to end: real rounds (`run --once` against simulated
resolvers) queue each round's summary and every confirmed transition in the probe's outbox,
in the round's transaction; the outbox signs and delivers them to a collector writing into a
real PostgreSQL. A collector that is down delays nothing, and the probe catches up in order
when it is back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
from conftest import run_cli
from test_collector import TOKEN, config_file

from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.service.collector import Collector, start
from nsdi_tracker.settings.collector import load_collector
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.postgres.fleet import FleetStore
from nsdi_tracker.store.sqlite import Store


async def run_collector(tmp_path: Path, pg: str, port: int = 0) -> tuple[Any, FleetStore, int]:
    config = load_collector(config_file(tmp_path, pg), KINDS)
    store = await FleetStore.open(config.database)
    collector = Collector(config, store)
    await collector.prepare()
    runner, address = await start(collector, Listen("127.0.0.1", port))
    return runner, store, int(address.rsplit(":", 1)[1])


def fleet_table(port: int) -> str:
    return (f'[fleet]\ncollector = "http://127.0.0.1:{port}"\nprobe = "msk-1"\n'
            f'token = "{TOKEN}"\nisp = "Rostelecom"\nasn = 12389\n'
            "retry_initial = 0.2\nretry_max = 0.5\n")  # fmt: skip


async def once(h: Any) -> None:
    code, _, err = await run_cli("run", "--once", "-c", str(h.cfg_path), "--deliver-timeout", "5")
    assert code == 0, err


async def test_a_probe_reports_its_rounds_and_catches_up(
    harness: Any, tmp_path: Path, pg: str
) -> None:
    runner, store, port = await run_collector(tmp_path, pg)
    h = await harness(["youtube.com", "bbc.com"], extra=fleet_table(port))
    try:
        await once(h)
        await once(h)
        h.remove("youtube.com")
        await once(h)
        await once(h)
        with psycopg.connect(pg) as conn:
            rounds = conn.execute("SELECT round_id FROM rounds ORDER BY round_id").fetchall()
            latest = dict(conn.execute("SELECT domain, national FROM latest").fetchall())
            types = conn.execute(
                "SELECT type, COUNT(*) FROM transitions WHERE scope = 'national' GROUP BY 1"
            ).fetchall()
        assert [r for (r,) in rounds] == [1, 2, 3, 4]
        assert latest == {"youtube.com": "removed", "bbc.com": "present"}
        assert dict(types) == {"removed": 1}  # changes only: the summaries carry the rest

        # The collector goes away for two rounds: they are measured and kept, not lost.
        await runner.cleanup()
        h.restore("youtube.com")
        await once(h)
        await once(h)
        with Store.open_readonly(h.db) as probe:
            waiting = probe.backlog()["pending"]
        assert waiting >= 2  # two summaries at least, and the restoration's transitions
        runner, _, _ = await run_collector(tmp_path, pg, port)
        await once(h)  # the next round delivers what waited, oldest first
        with psycopg.connect(pg) as conn:
            rounds = conn.execute("SELECT round_id FROM rounds ORDER BY received").fetchall()
            restored = conn.execute(
                "SELECT COUNT(*) FROM transitions WHERE type = 'restored'"
            ).fetchone()
            national = conn.execute(
                "SELECT national FROM latest WHERE domain = 'youtube.com'"
            ).fetchone()
        assert [r for (r,) in rounds] == [1, 2, 3, 4, 5, 6, 7]
        assert restored is not None and restored[0] >= 1 and national == ("present",)
        with Store.open_readonly(h.db) as probe:
            assert probe.backlog()["pending"] == 0
            kept = probe.db.execute("SELECT COUNT(*), COUNT(body) FROM summaries").fetchone()
        assert kept == (7, 0)  # delivered summaries keep their row, not their bytes
    finally:
        await runner.cleanup()
        await store.close()


async def test_postgres_and_the_collector_going_down_lose_nothing(
    harness: Any, tmp_path: Path
) -> None:
    """PostgreSQL stops under a running collector (it answers 503), then the collector itself
    is killed; the probe keeps measuring, and once both are back every round and transition
    is in PostgreSQL exactly once."""
    import shutil
    import tempfile

    from nsdi_tracker.sim.postgres import create

    folder = Path(tempfile.mkdtemp(prefix="nsdi-pg-"))
    server = create(folder)
    try:
        runner, store, port = await run_collector(tmp_path, server.dsn())
        h = await harness(["youtube.com", "bbc.com"], extra=fleet_table(port))
        await once(h)
        server.ctl("-m", "fast", "-w", "stop")  # the database goes away under the collector
        await once(h)
        h.remove("youtube.com")
        await once(h)
        await runner.cleanup()  # and then the collector
        await store.close()
        await once(h)
        with Store.open_readonly(h.db) as probe:
            assert probe.backlog()["pending"] >= 3
        server.start()
        runner, store, _ = await run_collector(tmp_path, server.dsn(), port)
        await once(h)
        with psycopg.connect(server.dsn()) as conn:
            rounds = conn.execute("SELECT round_id FROM rounds ORDER BY round_id").fetchall()
            removed = conn.execute(
                "SELECT COUNT(*) FROM transitions WHERE type = 'removed' AND scope = 'national'"
            ).fetchone()
        assert [r for (r,) in rounds] == [1, 2, 3, 4, 5]
        assert removed == (1,)
        with Store.open_readonly(h.db) as probe:
            assert probe.backlog()["pending"] == 0
        await runner.cleanup()
        await store.close()
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_daemon_sends_each_round_as_it_ends(
    harness: Any, daemon: Any, tmp_path: Path, pg: str
) -> None:
    """A round that confirms nothing still sends its summary at once: the collector has each
    round within a second of its end, not at the outbox's next idle look (a minute)."""
    from conftest import FAST

    runner, store, port = await run_collector(tmp_path, pg)
    try:
        h = await harness(["youtube.com"], extra=FAST + fleet_table(port))
        d = await daemon(h.cfg_path)
        await d.wait_rounds(4)
        await asyncio.sleep(0.5)
        assert await d.stop() == 0
        with psycopg.connect(pg) as conn:
            lags = conn.execute(
                "SELECT round_id, EXTRACT(EPOCH FROM received - finished) FROM rounds "
                "ORDER BY round_id"
            ).fetchall()
    finally:
        await runner.cleanup()
        await store.close()
    assert [r for r, _ in lags][:4] == [1, 2, 3, 4]
    assert all(lag < 1.0 for _, lag in lags[:4]), lags
