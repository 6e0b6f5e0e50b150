"""`nsdi-tracker fleet-demo` from the command line, as `make fleet-demo` runs it: PostgreSQL,
the collector and three probes on loopback, and the fleet's verdicts printed."""

from __future__ import annotations

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
    assert not running_clusters()  # its PostgreSQL is stopped and its folder gone


def running_clusters() -> list[Path]:
    return list(Path("/tmp").glob("nsdi-fleet-pg-*/data/postmaster.pid"))
