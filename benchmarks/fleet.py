"""Fleet benchmark: how fast the collector takes round summaries into PostgreSQL, and how fast
the fleet's status answers for 100 probes x 10,000 domains.

    make bench-fleet                # or: .venv/bin/python benchmarks/fleet.py [--probes 100]

Starts a throw-away PostgreSQL from Debian on loopback (nsdi_tracker.sim.postgres) and the real
`nsdi-tracker collector` for --probes probes, then submits one round per probe, each with
--domains domain verdicts (5% removed, the rest present), signed as a probe signs them, four
requests in flight. Prints the rows stored per second (the wall time of all submissions, the
probes' signing included) and the time of GET /api/fleet/status over all of them (median and
worst of five); then, from this process on the same database, the fleet's evaluation: the first
(every name new), one with nothing new, and the one after a second round from every probe that
confirms every name's first verdict. Writes JSON under benchmarks/results/. Installs
PostgreSQL from Debian if missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sweep import ensure_tools

from nsdi_tracker.core import signing
from nsdi_tracker.core.submission import round_body
from nsdi_tracker.sim.postgres import create

HERE = Path(__file__).resolve().parent
ROWS_TARGET = 50_000  # rows a second
STATUS_TARGET = 1.0  # seconds


def token(i: int) -> str:
    return f"bench-probe-token-{i:04d}-0123456789"


def body(probe: str, domains: int, round_id: int = 1) -> bytes:
    verdicts = [
        [f"n{i:07d}.bench.test", "removed" if i % 20 == 1 else "present",
         {"nsdi-a": "removed" if i % 20 == 1 else "present"}]
        for i in range(domains)
    ]  # fmt: skip
    now = datetime.now(UTC).isoformat()
    summary = {"id": round_id, "started": now, "finished": now, "status": "ok", "interval": 300,
               "resolvers": {"nsdi-a": {"role": "national", "up": True},
                             "ref": {"role": "reference", "up": True}},
               "domains": verdicts}  # fmt: skip
    return round_body(probe, str(uuid.uuid4()), summary)


async def submit_all(base: str, probes: int, domains: int, round_id: int = 1) -> float:
    bodies = [(f"p{i:03d}", token(i), body(f"p{i:03d}", domains, round_id)) for i in range(probes)]
    queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            probe, secret, data = queue.get_nowait()
            headers = signing.headers(probe, secret, int(time.time()), data)
            async with session.post(base + "/api/v1/submissions", data=data,
                                    headers=headers) as r:  # fmt: skip
                if r.status != 200:
                    raise SystemExit(f"submission refused: {r.status} {await r.text()}")

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(4)))
        return time.perf_counter() - start


async def status_times(base: str, n: int = 5) -> tuple[list[float], int]:
    times, size = [], 0
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            start = time.perf_counter()
            async with session.get(base + "/api/fleet/status") as r:
                doc = await r.json()
            times.append(time.perf_counter() - start)
            size = len(doc["domains"])
    return times, size


async def evaluation_times(config: Path, base: str, probes: int, domains: int) -> list[float]:
    """The fleet's evaluation, in this process on the same database: the first (every name
    new), with nothing new, and after a second round from every probe (every name's first
    verdict confirmed; the removals' events carry every probe's evidence)."""
    from nsdi_tracker.delivery.sinks import KINDS
    from nsdi_tracker.service.collector import Collector
    from nsdi_tracker.settings.collector import load_collector
    from nsdi_tracker.store.postgres.fleet import FleetStore

    settings = load_collector(config, KINDS)
    store = await FleetStore.open(settings.database)
    times = []
    try:
        collector = Collector(settings, store)
        for step in ("first", "nothing new", "confirming"):
            if step == "confirming":
                await submit_all(base, probes, domains, round_id=2)
            start = time.perf_counter()
            events = await collector.evaluate()
            times.append(time.perf_counter() - start)
            print(f"evaluation, {step}: {times[-1]:.2f} s, {len(events or [])} events")
    finally:
        await store.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--domains", type=int, default=10_000)
    args = parser.parse_args()
    ensure_tools("postgresql")
    folder = Path(tempfile.mkdtemp(prefix="nsdi-fleet-bench-"))
    pg_folder = Path(tempfile.mkdtemp(prefix="nsdi-fleet-pg-"))  # the server's user reaches it
    server = create(pg_folder)
    collector = None
    try:
        config = folder / "collector.toml"
        config.write_text(f'listen = "127.0.0.1:0"\ndatabase = "{server.dsn()}"\n'
                          # its own evaluations wait: this process times them
                          'max_body = 67108864\n[fleet]\nevaluate_every = 3600\n' + "".join(
                              f'[[probe]]\nname = "p{i:03d}"\ntoken = "{token(i)}"\n'
                              f"asn = {64512 + i}\n" for i in range(args.probes)))  # fmt: skip
        collector = subprocess.Popen(
            [sys.executable, "-m", "nsdi_tracker", "collector", "-c", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert collector.stdout is not None
        line = collector.stdout.readline()
        found = re.search(r"on (http://\S+)/ ", line)
        if not found:
            raise SystemExit(f"the collector did not start: {line}")
        base = found.group(1)
        rows = args.probes * args.domains
        took = asyncio.run(submit_all(base, args.probes, args.domains))
        times, counted = asyncio.run(status_times(base))
        evaluations = asyncio.run(evaluation_times(config, base, args.probes, args.domains))
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(10)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(pg_folder, ignore_errors=True)
    rate = rows / took
    print(f"\n{args.probes} probes x {args.domains:,} domains = {rows:,} domain verdicts\n")
    print(f"ingest: {rows:,} rows in {took:.1f} s = {rate:,.0f} rows/s "
          f"(target {ROWS_TARGET:,})")  # fmt: skip
    print(f"fleet status ({counted:,} domains): median {statistics.median(times):.3f} s, "
          f"worst {max(times):.3f} s (target {STATUS_TARGET} s)")  # fmt: skip
    print("fleet evaluation: first {:.2f} s, nothing new {:.3f} s, confirming {:.2f} s".format(
        *evaluations))  # fmt: skip
    out = (
        HERE
        / "results"
        / f"fleet-{args.probes}x{args.domains}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    )
    out.parent.mkdir(exist_ok=True)
    figures = {"probes": args.probes, "domains": args.domains, "rows": rows,
               "ingest_s": round(took, 2), "rows_per_s": round(rate),
               "status_s": [round(t, 3) for t in times],
               "evaluation_s": [round(t, 3) for t in evaluations]}  # fmt: skip
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out}")
    return 0 if rate >= ROWS_TARGET and max(times) < STATUS_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
