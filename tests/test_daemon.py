"""The daemon as users start it: `nsdi-tracker run` in a child process against local servers.

Rhythm, one event per confirmed removal, reloads (SIGHUP, file change, a bad config), a clean
SIGTERM, a hung round cut off, /healthz turning 503, and /metrics as Prometheus parses it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import time
from typing import Any

import pytest
from conftest import FAST, run_cli
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_outbox import webhook

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.sim import silent
from nsdi_tracker.store.sqlite import Store


async def test_rhythm_one_removed_event_and_clean_stop(
    harness: Any, receiver: Any, daemon: Any
) -> None:
    """Rounds come every interval, the first at once; a removal confirmed over two rounds
    reaches the webhook exactly once; SIGTERM exits 0 well within the grace period."""
    h = await harness(["youtube.com", "meduza.io"], extra=FAST + webhook(receiver.url))
    t0 = time.monotonic()
    d = await daemon(h.cfg_path)
    await d.wait_rounds(3)
    starts = [parse_iso(r["time"]).timestamp() for r in d.rounds()[:3]]
    assert all(0.8 <= b - a <= 1.6 for a, b in itertools.pairwise(starts)), starts
    assert time.monotonic() - t0 < 4  # the first round did not wait for an interval

    h.remove("youtube.com")
    mark = len(d.logs)
    await d.wait_for(lambda x: x.get("event") == "round" and x["transitions"] > 0, start=mark)
    await d.wait_rounds(3, start=mark)  # and a few more rounds: no repeat
    for _ in range(40):
        if receiver.events():
            break
        await asyncio.sleep(0.05)
    assert [(e["type"], e["domain"], e["scope"]) for e in receiver.events()] == [
        ("removed", "youtube.com", "national")
    ]

    t1 = time.monotonic()
    assert await d.stop() == 0
    assert time.monotonic() - t1 < 5
    assert d.logs[-1]["event"] == "stopped"
    assert not [x for x in d.logs if x["level"] in ("error", "critical", "raw")]


async def test_a_name_added_already_removed_is_announced_once(
    harness: Any, receiver: Any, daemon: Any
) -> None:
    """A name added to the watchlist of a running daemon that the national resolver has
    already removed: one `removed` event (marked a first verdict) within `confirm` rounds of
    the reload, and none again; names added present stay silent baselines."""
    h = await harness(["youtube.com"], extra=FAST + webhook(receiver.url))
    d = await daemon(h.cfg_path)
    await d.wait_rounds(2)
    for name in ("bbc.com", "dw.com"):
        h.ref.set(name, h.ref.script_for("youtube.com", "A"))
    h.nat.set("dw.com", h.nat.script_for("youtube.com", "A"))
    h.remove("bbc.com")  # gone from the national resolver before anyone watched it
    (h.tmp_path / "watch.txt").write_text("youtube.com\nbbc.com\ndw.com\n")
    line = await d.wait_for(lambda x: x.get("event") == "reload", timeout=10)
    assert line["added"] == ["bbc.com", "dw.com"]
    mark = len(d.logs)
    await d.wait_rounds(2 + 1, start=mark)  # confirm = 2; the first may have started before
    assert any("removed bbc.com (national)" in r["message"] for r in d.rounds(mark)[:3])
    await d.wait_rounds(6, start=mark)  # and more rounds: no repeat
    for _ in range(40):
        if receiver.events():
            break
        await asyncio.sleep(0.05)
    events = receiver.events()
    assert [(e["type"], e["domain"], e["scope"], e["from"]) for e in events] == [
        ("removed", "bbc.com", "national", None)
    ]
    assert events[0]["first_verdict"] is True
    assert await d.stop() == 0


async def test_reload_by_sighup_by_file_change_and_a_bad_config(harness: Any, daemon: Any) -> None:
    """SIGHUP after adding a name measures it next round; a config that does not load is
    logged with its problem and the running one stays; a fixed file is picked up unasked."""
    h = await harness(["youtube.com", "meduza.io"], extra=FAST)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(1)
    watch = h.tmp_path / "watch.txt"
    watch.write_text("youtube.com\nmeduza.io\nbbc.com\n")
    h.nat.set("bbc.com", h.nat.script_for("youtube.com", "A"))
    h.ref.set("bbc.com", h.ref.script_for("youtube.com", "A"))
    d.signal(signal.SIGHUP)
    line = await d.wait_for(lambda x: x.get("event") == "reload")
    assert line["applied"] is True and line["added"] == ["bbc.com"]
    mark = len(d.logs)
    await d.wait_rounds(2, start=mark)  # the first may have started before the reload
    assert d.rounds(mark)[1]["domains"] == 3

    good = h.cfg_path.read_text()
    h.cfg_path.write_text(good.replace("interval = 1", 'interval = "soon"'))
    d.signal(signal.SIGHUP)
    bad = await d.wait_for(lambda x: x.get("event") == "reload" and not x["applied"], start=mark)
    assert "interval" in bad["message"] and "'soon'" in bad["message"]
    mark = len(d.logs)
    await d.wait_rounds(2, start=mark)  # still measuring, on the old config
    assert all(r["domains"] == 3 and r["status"] == "ok" for r in d.rounds(mark))
    _, text = await d.get("/metrics")
    assert "nsdi_tracker_config_last_reload_successful 0.0" in text

    watch.write_text("youtube.com\n")
    h.cfg_path.write_text(good)
    line = await d.wait_for(
        lambda x: x.get("event") == "reload" and x["applied"], start=mark, timeout=15
    )
    assert "files changed" in line["message"] and sorted(line["removed"]) == [
        "bbc.com",
        "meduza.io",
    ]
    mark = len(d.logs)
    await d.wait_rounds(2, start=mark)
    assert d.rounds(mark)[1]["domains"] == 1
    assert await d.stop() == 0
    # The names that left the watchlist keep their history.
    code, out, _ = await run_cli("history", "meduza.io", "-c", str(h.cfg_path), "--json")
    assert code == 0 and json.loads(out)["transitions"]


async def test_metrics_parse_and_carry_the_verdict_gauges(harness: Any, daemon: Any) -> None:
    """/metrics is valid Prometheus text: verdict gauges per domain and scope, national
    counts, rounds by status, per-resolver query outcomes and latency histograms."""
    h = await harness(["youtube.com", "meduza.io"], extra=FAST)
    h.remove("meduza.io")
    d = await daemon(h.cfg_path)
    await d.wait_rounds(3)
    status, text = await d.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    verdicts = {
        (s.labels["domain"], s.labels["scope"], s.labels["verdict"]): s.value
        for s in families["nsdi_tracker_verdict"].samples
    }
    assert verdicts[("youtube.com", "national", "present")] == 1
    assert verdicts[("meduza.io", "national", "removed")] == 1
    assert verdicts[("meduza.io", "nsdi-a", "removed")] == 1
    counts = {s.labels["verdict"]: s.value for s in families["nsdi_tracker_domains"].samples}
    assert counts["present"] == 1 and counts["removed"] == 1
    rounds = {
        s.labels["status"]: s.value
        for s in families["nsdi_tracker_rounds"].samples
        if s.name == "nsdi_tracker_rounds_total"
    }
    assert rounds["ok"] >= 3
    queries = families["nsdi_tracker_queries"].samples
    assert any(s.labels == {"resolver": "nsdi-a", "outcome": "nxdomain"} for s in queries)
    latency = [
        s
        for s in families["nsdi_tracker_query_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["resolver"] == "ref"
    ]
    assert latency and latency[0].value >= 4 * 3  # 2 names x 2 types x 3 rounds
    assert families["nsdi_tracker_last_round_timestamp_seconds"].samples[0].value > 0
    assert await d.stop() == 0


async def test_hung_round_is_cut_off_and_healthz_turns_503(harness: Any, daemon: Any) -> None:
    """A resolver that never answers, with retries longer than round_timeout: the round is
    cut off and recorded as such, the next one still starts, /healthz says 503 with the
    reason once no round has measured for two intervals, and 200 again when one does."""
    h = await harness(["youtube.com"], extra=FAST)
    cfg = h.cfg_path.read_text().replace(
        'name = "nsdi-a"', 'name = "nsdi-a"\ntimeout = 0.5\nretries = 3'
    )
    h.cfg_path.write_text(cfg)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(1)
    status, body = await d.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"

    h.nat.outage = silent()
    mark = len(d.logs)
    cut = await d.wait_for(
        lambda x: x.get("event") == "round" and x["status"] == "timeout", start=mark
    )
    assert 0.7 <= cut["seconds"] <= 1.5
    await d.wait_for(
        lambda x: x.get("event") == "round" and x["round"] > cut["round"], start=mark
    )  # the next round ran
    deadline = time.monotonic() + 10
    while True:
        status, body = await d.get("/healthz")
        if status == 503 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    doc = json.loads(body)
    assert status == 503 and "round_timeout" in doc["reason"], doc
    assert doc["last_round"]["status"] == "timeout"

    h.nat.outage = None
    mark = len(d.logs)
    await d.wait_for(lambda x: x.get("event") == "round" and x["status"] == "ok", start=mark)
    status, _ = await d.get("/healthz")
    assert status == 200
    assert await d.stop() == 0
    with Store.open_readonly(h.db) as store:  # each round keeps the interval it was due on
        kept = set(store.db.execute("SELECT status, interval FROM rounds").fetchall())
    assert kept == {("ok", 1.0), ("timeout", 1.0)}, kept

    # Rounds stopped altogether: the health command (the image's HEALTHCHECK) fails.
    code, out, _ = await run_cli("health", "-c", str(h.cfg_path))
    assert code == 0, out
    await asyncio.sleep(2.2)
    code, out, _ = await run_cli("health", "-c", str(h.cfg_path))
    assert code == 1 and "the last round ended" in out


async def test_api_endpoints(harness: Any, daemon: Any) -> None:
    """/api/status, paginated /api/transitions with filters, the CSV, one domain, and clear
    400/404 answers for bad requests."""
    h = await harness(["youtube.com", "meduza.io", "bbc.com"], extra=FAST)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(2)  # baselines: 3 domains x (national + nsdi-a)
    status, body = await d.get("/api/status")
    doc = json.loads(body)
    assert status == 200 and doc["health"]["status"] == "ok"
    assert {x["domain"] for x in doc["domains"]} == {"youtube.com", "meduza.io", "bbc.com"}
    assert doc["next_round"] and doc["schedule"]["interval"] == 1
    headline = doc["last_round"]["headline"]  # an object, verdict -> watched domains
    assert isinstance(headline, dict) and sum(headline.values()) == 3, headline

    seen, path = [], "/api/transitions?limit=4&type=baseline"
    while path:
        status, body = await d.get(path)
        assert status == 200
        page = json.loads(body)
        assert page["count"] <= 4
        seen += page["transitions"]
        path = page["next"]
    assert len(seen) == 6 and len({t["event_id"] for t in seen}) == 6
    assert all(t["evidence"] is None for t in seen)  # a baseline carries none

    status, body = await d.get("/api/transitions.csv?resolver=national")
    lines = body.splitlines()
    assert status == 200 and lines[0].startswith("event_id,confirmed_at") and len(lines) == 4

    status, body = await d.get("/api/domains/YouTube.com")
    doc = json.loads(body)
    assert status == 200 and doc["current"]["national"]["verdict"] == "present"
    assert [t["type"] for t in doc["transitions"]] == ["baseline", "baseline"]

    assert (await d.get("/api/domains/never.example"))[0] == 404
    status, body = await d.get("/api/transitions?since=yesterday")
    assert status == 400 and "yesterday" in json.loads(body)["error"]
    assert (await d.get("/api/transitions?limit=0"))[0] == 400
    assert (await d.get("/api/transitions?colour=red"))[0] == 400

    # An online backup while the daemon writes: complete, sound, readable by every command.
    copy = h.tmp_path / "backup.db"
    code, _, err = await run_cli("backup", "-c", str(h.cfg_path), str(copy))
    assert code == 0 and "backed up" in err
    code, out, _ = await run_cli("export", "--db", str(copy), "--type", "baseline")
    assert code == 0 and len(out.splitlines()) == 1 + 6
    with Store.open(copy) as store:
        assert store.integrity() == "ok"
    assert await d.stop() == 0


async def test_second_daemon_on_the_same_database_is_refused(harness: Any, daemon: Any) -> None:
    """Two daemons on one database would both confirm every change: the second one exits 2;
    so does one whose status port is taken."""
    h = await harness(["youtube.com"], extra=FAST)
    d = await daemon(h.cfg_path)
    code, _, err = await run_cli("run", "-c", str(h.cfg_path), "--listen", "127.0.0.1:0")
    assert code == 2 and "another nsdi-tracker is writing" in err
    assert await d.stop() == 0
    # A status port that is taken: a clear error, exit 2, the database left as it was.
    port = d.base.rsplit(":", 1)[1]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(port)))
        taken.listen()
        code, _, err = await run_cli("run", "-c", str(h.cfg_path), "--listen", f"127.0.0.1:{port}")
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


async def test_sigterm_during_a_hung_round_cancels_it_within_the_grace(
    harness: Any, daemon: Any
) -> None:
    """SIGTERM while a round waits on a silent resolver: it gets `grace` seconds, is then
    cancelled (a warning, not an error), nothing half-written is left, and the process exits
    0."""
    h = await harness(["youtube.com"])
    cfg = h.cfg_path.read_text().replace(
        'name = "nsdi-a"', 'name = "nsdi-a"\ntimeout = 2\nretries = 5'
    )
    h.cfg_path.write_text("interval = 60\njitter = 0\nround_timeout = 50\ngrace = 1\n" + cfg)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(1)
    before = await run_cli("status", "-c", str(h.cfg_path), "--json")
    h.nat.outage = silent()
    assert await d.stop() == 0  # a fresh start runs its first round at once
    d = await daemon(h.cfg_path)  # and this one hangs on nsdi-a
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    assert await d.stop() == 0
    assert 0.9 <= time.monotonic() - t0 < 4
    assert any("grace period" in x["message"] for x in d.logs)
    # Our own cancel is not a failed round (issue 14, defect 13).
    assert not [x for x in d.logs if x["level"] in ("error", "critical", "raw")], d.logs
    assert await run_cli("status", "-c", str(h.cfg_path), "--json") == before
    with Store.open(h.db) as store:
        assert store.integrity() == "ok"
        assert [r[0] for r in store.db.execute("SELECT status FROM rounds")] == ["ok"]


async def test_scheduler_trouble_is_logged_and_counted(
    harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A round that raised, a run started too late and a run skipped because the previous one
    still ran: each is logged once and counted by kind in the metrics."""
    from datetime import UTC, datetime

    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
        JobExecutionEvent,
        JobSubmissionEvent,
    )

    from nsdi_tracker.service.daemon import Daemon
    from nsdi_tracker.settings.watchlist import load_watchlists

    h = await harness(["youtube.com"])
    config = h.config()
    at = datetime(2026, 2, 10, 12, tzinfo=UTC)
    with Store.open(h.db) as store:
        d = Daemon(config, load_watchlists(config.watchlists), store)
        d._on_job_event(
            JobExecutionEvent(EVENT_JOB_ERROR, "round", "default", at, exception=OSError("disk"))
        )
        d._on_job_event(JobExecutionEvent(EVENT_JOB_MISSED, "round", "default", at))
        d._on_job_event(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "round", "default", [at]))
        d.db.close()
    counted = {
        s.labels["event"]: s.value
        for f in text_string_to_metric_families(generate_latest(d.metrics.registry).decode())
        if f.name == "nsdi_tracker_scheduler_events"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert counted == {"error": 1, "missed": 1, "skipped": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert "round failed: OSError: disk" in messages
    assert any("2026-02-10T12:00:00+00:00 was missed" in m for m in messages)
    assert any("2026-02-10T12:00:00+00:00 skipped" in m for m in messages)
