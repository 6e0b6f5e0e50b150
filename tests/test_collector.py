"""The collector over HTTP on loopback, writing into a real PostgreSQL: good submissions are
stored once however often they come, and every bad one (wrong token, bad signature, replay,
stale timestamp, malformed JSON, unknown schema version, a wrong field, 10 MB) is refused with
its status and leaves the database as it was. Two collectors share one PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import run_cli
from prometheus_client.parser import text_string_to_metric_families

from nsdi_tracker.core import signing
from nsdi_tracker.core.submission import Transition, parse, round_body, transition_body
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.service.collector import SUBMISSIONS, Collector, start
from nsdi_tracker.settings.collector import load_collector
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.postgres.fleet import FleetStore

TOKEN = "msk-token-0123456789abcdef"


def config_file(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'listen = "127.0.0.1:0"\ndatabase = "{dsn}"\nmax_body = 1048576\n'
        f'[[probe]]\nname = "msk-1"\ntoken = "{TOKEN}"\nisp = "Rostelecom"\nasn = 12389\n'
        '[[probe]]\nname = "spb-1"\ntoken = "spb-token-0123456789abcdef"\nasn = 8359\n'
    )
    return path


def a_round(round_id: int = 1, n: int = 3) -> dict[str, Any]:
    return {
        "id": round_id, "started": "2026-02-10T18:00:00Z", "finished": "2026-02-10T18:00:20Z",
        "status": "ok", "interval": 300,
        "resolvers": {"nsdi-a": {"role": "national", "up": True},
                      "ref": {"role": "reference", "up": True}},
        "domains": [[f"d{i}.example", "removed", {"nsdi-a": "removed"}] for i in range(n)],
    }  # fmt: skip


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def post(
        self, body: bytes, probe: str = "msk-1", token: str = TOKEN, at: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:  # fmt: skip
        sent = headers or signing.headers(probe, token, int(at or time.time()), body)
        data = io.BytesIO(body)  # aiohttp streams a large body from a file-like object
        async with self.session.post(self.base + SUBMISSIONS, data=data, headers=sent) as r:
            return r.status, await r.json(), sent


@pytest.fixture
async def collectors(tmp_path: Path, pg: str) -> AsyncIterator[Callable[..., Any]]:
    """Start collectors (as `nsdi-tracker collector` does) on free loopback ports."""
    cleanups: list[Any] = []
    session = aiohttp.ClientSession()

    async def make() -> tuple[Client, FleetStore]:
        config = load_collector(config_file(tmp_path, pg), KINDS)
        store = await FleetStore.open(config.database)
        collector = Collector(config, store)
        await collector.prepare()
        runner, address = await start(collector, Listen("127.0.0.1", 0))
        cleanups.append((runner, store))
        return Client(f"http://{address}", session), store

    yield make
    for runner, store in cleanups:
        await runner.cleanup()
        await store.close()
    await session.close()


async def test_a_round_is_stored_once(collectors: Any) -> None:
    client, store = await collectors()
    body = round_body("msk-1", str(uuid.uuid4()), a_round())
    status, answer, sent = await client.post(body)
    assert status == 200 and answer["stored"] is True, answer
    status, answer, _ = await client.post(body)  # sent again, signed anew: already stored
    assert status == 200 and answer == {"id": answer["id"], "stored": False, "duplicate": True}
    status, answer, _ = await client.post(body, headers=sent)  # the same request: a replay
    assert status == 409 and "replay" in answer["error"]
    assert (await store.counts()) == {"probes": 2, "rounds": 1, "verdicts": 3, "latest": 3,
                                      "transitions": 0, "fleet_transitions": 0}  # fmt: skip


async def test_bad_submissions_are_refused_and_change_nothing(collectors: Any) -> None:
    client, store = await collectors()
    before = await store.counts()
    good = round_body("msk-1", str(uuid.uuid4()), a_round())
    wrong_field = a_round()
    wrong_field["domains"][1][1] = "gone"
    cases = [
        (await client.post(good, token="another-token-0123456789"), 401, "does not match"),
        (await client.post(good, probe="nobody"), 401, "unknown probe"),
        (await client.post(good, at=time.time() - 3600), 401, "clock"),
        (await client.post(good, headers={signing.PROBE_HEADER: "msk-1"}), 401, "required"),
        (await client.post(b"{not json"), 400, "body: not JSON"),
        (await client.post(json.dumps({"schema": 2}).encode()), 400, "schema: 2"),
        (await client.post(round_body("msk-1", str(uuid.uuid4()), wrong_field)), 400,
         "round.domains[1][1]: 'gone' is not a verdict"),
        (await client.post(round_body("spb-1", str(uuid.uuid4()), a_round())), 400,
         "is not the probe that signed"),
        (await client.post(b"x" * (10 * 1024 * 1024)), 413, "over 1048576 bytes"),  # 10 MB
    ]  # fmt: skip
    for (status, answer, _), want_status, want_text in cases:
        assert status == want_status and want_text in answer["error"], (answer, want_status)
    assert await store.counts() == before


async def test_transitions_and_two_collectors_on_one_database(collectors: Any) -> None:
    """Two stateless collectors: what one stored the other knows as stored."""
    (a, store), (b, _) = await collectors(), await collectors()
    event_id = str(uuid.uuid4())
    event = {"id": event_id, "type": "removed", "domain": "youtube.com",
             "scope": "national", "from": "present", "to": "removed",
             "confirmed_at": "2026-02-10T18:05:00Z"}  # fmt: skip
    body = transition_body("msk-1", event)
    assert (await a.post(body))[1]["stored"] is True
    assert (await b.post(body))[1]["duplicate"] is True
    first = round_body("msk-1", str(uuid.uuid4()), a_round(1))
    second = round_body("msk-1", str(uuid.uuid4()), a_round(2))
    assert (await a.post(first))[1]["stored"] and (await b.post(second))[1]["stored"]
    assert (await a.post(second))[1]["duplicate"] is True
    counts = await store.counts()
    assert counts["transitions"] == 1 and counts["rounds"] == 2 and counts["verdicts"] == 6
    async with b.session.get(b.base + "/healthz") as r:
        health = await r.json()
    assert r.status == 200 and health["rounds"] == 2 and health["probes"] == 2
    async with a.session.get(a.base + "/api/fleet/probe-transitions?type=removed,restored") as r:
        listed = await r.json()
    assert [(t["probe"], t["domain"], t["type"]) for t in listed["transitions"]] == [
        ("msk-1", "youtube.com", "removed")]  # fmt: skip
    assert listed["transitions"][0]["confirmed_at"].startswith("2026-02-10T18:05:00")
    async with a.session.get(a.base + "/api/fleet/probe-transitions.csv?domain=YouTube.com") as r:
        table = list(csv.reader(io.StringIO(await r.text())))
    assert table[0][:3] == ["event_id", "confirmed_at", "probe"] and len(table) == 2
    assert table[1][0] == event_id and table[1][4] == "12389"
    for bad in ("type=gone", "limit=0", "limit=" + "9" * 5000, "since=yesterday", "colour=red"):
        async with a.session.get(a.base + f"/api/fleet/probe-transitions?{bad}") as r:
            assert r.status == 400, bad


async def test_the_collector_command(tmp_path: Path, pg: str) -> None:
    """`nsdi-tracker collector` as a process: it migrates, serves and stops on SIGTERM; a bad
    config or an unreachable database exits 2 with a message naming it, and no token."""
    path = config_file(tmp_path, pg)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nsdi_tracker", "collector", "-c", str(path), "--listen",
        "127.0.0.1:0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    found = re.search(r"collector on (http://\S+)/ for 2 probes", line)
    assert found, line
    async with aiohttp.ClientSession() as session, session.get(found[1] + "/healthz") as r:
        assert r.status == 200 and (await r.json())["probes"] == 2
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0

    short = tmp_path / "short.toml"
    short.write_text(path.read_text().replace(TOKEN, "short"))
    code, _, err = await run_cli("collector", "-c", str(short))
    assert code == 2 and "probe[0] (msk-1).token: must be at least 16 characters" in err
    assert "short" not in err.replace("short.toml", "")
    down = tmp_path / "down.toml"
    down.write_text(path.read_text().replace(pg.split("@")[1].split("/")[0], "127.0.0.1:9"))
    code, _, err = await run_cli("collector", "-c", str(down))
    assert code == 2 and "database: cannot open it" in err and "Traceback" not in err


async def test_fleet_status_tells_a_removal_from_an_isps_filtering(tmp_path: Path, pg: str) -> None:
    """Three ISPs: all three see youtube.com gone from the national system, one also filters
    bbc.com; a fourth probe went silent long ago and its verdicts do not count."""
    probes = {"msk-1": 12389, "spb-1": 8359, "ekb-1": 31133, "old-1": 3216}
    text = f'listen = "127.0.0.1:0"\ndatabase = "{pg}"\n' + "".join(
        f'[[probe]]\nname = "{n}"\ntoken = "{n}-token-0123456789"\nasn = {asn}\n'
        for n, asn in probes.items()
    )
    (tmp_path / "fleet.toml").write_text(text)
    config = load_collector(tmp_path / "fleet.toml", KINDS)
    store = await FleetStore.open(config.database)
    collector = Collector(config, store)
    await collector.prepare()
    runner, address = await start(collector, Listen("127.0.0.1", 0))
    now = time.time()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(f"http://{address}", session)
            for name in probes:
                old = name == "old-1"
                finished = now - (7200 if old else 30)
                r = a_round(1, 0)
                r["started"] = r["finished"] = datetime.fromtimestamp(finished, UTC).isoformat()
                bbc = "removed" if name == "ekb-1" else "present"
                youtube = "present" if old else "removed"
                r["domains"] = [["youtube.com", youtube, {"nsdi-a": youtube}],
                                ["bbc.com", bbc, {"nsdi-a": bbc}]]  # fmt: skip
                body = round_body(name, str(uuid.uuid4()), r)
                status, answer, _ = await client.post(
                    body, probe=name, token=f"{name}-token-0123456789"
                )
                assert status == 200, answer
            async with session.get(client.base + "/api/fleet/status") as resp:
                fleet = await resp.json()
            async with session.get(client.base + "/api/fleet/domains/BBC.com") as resp:
                one = await resp.json()
            async with session.get(client.base + "/api/fleet/domains/never.example") as resp:
                assert resp.status == 404
            stranger = await client.post(b"{}", probe="no-such-probe")
            assert stranger[0] == 401
            async with session.get(client.base + "/metrics") as resp:
                metrics = {
                    s.name + str(sorted(s.labels.items())): s.value
                    for f in text_string_to_metric_families(await resp.text())
                    for s in f.samples
                }
        code, matrix, err = await run_cli("fleet", "status", "--collector", client.base)
    finally:
        await runner.cleanup()
        await store.close()
    verdicts = {d["domain"]: d for d in fleet["domains"]}
    youtube, bbc = verdicts["youtube.com"], verdicts["bbc.com"]
    assert youtube["verdict"] == "removed"
    assert youtube["blocked_networks"] == ["AS12389", "AS31133", "AS8359"]
    assert youtube["resolving"] == 0  # the silent probe's "present" is not counted
    assert bbc["verdict"] == "filtered" and bbc["blocked_networks"] == ["AS31133"]
    assert bbc["blocked_at"] == ["ekb-1"] and bbc["resolving"] == 2
    assert one["verdict"] == "filtered" and one["resolving_at"] == ["msk-1", "spb-1"]
    assert one["stale"] == ["old-1"] and len(one["probes"]) == 4
    assert metrics["nsdi_collector_submissions_total[('probe', 'msk-1'), ('status', '200')]"] == 1
    assert metrics["nsdi_collector_submissions_total[('probe', 'unknown'), ('status', '401')]"] == 1
    assert metrics["nsdi_collector_verdict_rows_total[('probe', 'msk-1')]"] == 2
    assert metrics["nsdi_collector_probe_stale[('probe', 'old-1')]"] == 1
    assert metrics["nsdi_collector_probe_stale[('probe', 'msk-1')]"] == 0
    assert 20 < metrics["nsdi_collector_probe_lag_seconds[('probe', 'msk-1')]"] < 120
    # The terminal matrix: the removal first, its networks, each probe's word, the stale one.
    assert code == 0, err
    lines = [" ".join(line.replace("│", " ").split()) for line in matrix.splitlines()]
    youtube_row = next(i for i, line in enumerate(lines) if line.startswith("youtube.com"))
    bbc_row = next(i for i, line in enumerate(lines) if line.startswith("bbc.com"))
    assert youtube_row < bbc_row
    assert lines[youtube_row].split()[:2] == ["youtube.com", "removed"]
    assert [lines[youtube_row + i].split()[0] for i in (1, 2, 3)] == [
        "AS12389", "AS31133", "AS8359"]  # fmt: skip
    assert lines[youtube_row].split()[2:] == ["REMOVED", "REMOVED", "ok", "REMOVED"]
    assert "old-1*" in matrix and "…" not in matrix
    assert lines[bbc_row].split() == ["bbc.com", "filtered", "REMOVED", "ok", "ok", "ok"]
    code, _, err = await run_cli("fleet", "status", "--collector", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach the collector at http://127.0.0.1:9" in err
    assert {p["name"]: p["stale"] for p in fleet["probes"]} == {
        "msk-1": False, "spb-1": False, "ekb-1": False, "old-1": True}  # fmt: skip


async def test_old_signatures_are_swept(tmp_path: Path, pg: str) -> None:
    """The signatures kept against replays go once their window has passed."""
    config = load_collector(config_file(tmp_path, pg), KINDS)
    store = await FleetStore.open(config.database)
    try:
        collector = Collector(config, store, clock=lambda: time.time() + 3600)
        await collector.prepare()
        event = {"id": str(uuid.uuid4()), "type": "removed", "domain": "youtube.com",
                 "scope": "national", "from": "present", "to": "removed",
                 "confirmed_at": "2026-02-10T18:05:00Z"}  # fmt: skip
        sub = parse(transition_body("msk-1", event))
        assert isinstance(sub, Transition)
        await store.add_transition(collector.probe_ids["msk-1"], sub, "sig", datetime.now(UTC))
        sweeper = asyncio.ensure_future(collector.forget_forever(every=0.05))
        await asyncio.sleep(0.3)
        sweeper.cancel()
        async with store.pool.connection() as conn:
            cursor = await conn.execute("SELECT COUNT(*) FROM signatures")
            assert await cursor.fetchone() == (0,)
    finally:
        await store.close()
