"""`nsdi-tracker fleet-demo` from the command line, as `make fleet-demo` runs it: PostgreSQL,
the collector and three probes on loopback, and the fleet's verdicts printed."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli


async def test_the_fleet_demo_tells_removal_from_filtering(tmp_path: Path) -> None:
    code, out, err = await run_cli("fleet-demo", "--no-wait", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert sum("rounds measured and reported" in line for line in lines) == 3
    youtube = next(i for i, line in enumerate(lines) if line.startswith("youtube.com"))
    assert lines[youtube] == "youtube.com removed REMOVED REMOVED REMOVED"
    assert [lines[youtube + i] for i in (1, 2, 3)] == ["AS12389", "AS31133", "AS8359"]
    bbc = next(i for i, line in enumerate(lines) if line.startswith("bbc.com"))
    assert lines[bbc] == "bbc.com filtered REMOVED ok ok" and lines[bbc + 1] == "AS31133"
    assert "wikipedia.org present ok ok ok" in lines
    # The collector announced both, once each, as changes from a confirmed `present`.
    assert sorted(line for line in lines if line.startswith("fleet event:")) == [
        "fleet event: bbc.com filtered by ISPs in AS31133, resolving elsewhere",
        "fleet event: youtube.com removed from the national DNS, seen in AS12389, AS31133, AS8359",
    ]
    logged = (tmp_path / "demo" / "fleet-events.ndjson").read_text().splitlines()
    events = sorted((e["domain"], e["type"], e["from"]) for e in map(json.loads, logged))
    assert events == [("bbc.com", "filtered", "present"), ("youtube.com", "removed", "present")]
    assert not running_clusters()  # its PostgreSQL is stopped and its folder gone


def running_clusters() -> list[Path]:
    return list(Path("/tmp").glob("nsdi-fleet-pg-*/data/postmaster.pid"))
