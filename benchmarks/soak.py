"""Soak benchmark: the daemon's memory over many rounds.

    .venv/bin/python benchmarks/soak.py [--names 300] [--rounds 1000] [--every 50]

Serves N names from NSD on 127.0.0.1 and a high port (as the sweep benchmark does) and runs
the real daemon (`nsdi-tracker run`) on them with a round every second (the shortest interval
the config takes), the status server on and polled once a second for /api/status and
/metrics, as a dashboard or Prometheus would. Reads the daemon's resident memory (VmRSS) after
every round and prints it every EVERY rounds and at rounds 50, 500 and 1,000, with the growth
from round 50 on. Stops after ROUNDS rounds (bounded: 2 s a round at most, or it gives up).
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import ensure_tools, free_port, serve_daemon

MARKS = (50, 500, 1000)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def poll(base: str, stop: asyncio.Event) -> None:
    """A dashboard and a Prometheus scraper: once a second each."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            for path in ("/api/status", "/metrics"):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(base + path) as r:
                        await r.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--no-http", action="store_true", help="no status server, no polling")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20_000 or not 1 <= args.names <= 100_000:
        raise SystemExit("--rounds 1..20000, --names 1..100000")
    ensure_tools()
    marks = sorted({m for m in MARKS if m <= args.rounds} | {args.rounds})
    seen: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="nsdi-soak-") as tmp:
        folder = Path(tmp)
        http_port = free_port()
        nsd, config = serve_daemon(folder, args.names, 1, 0.9, None if args.no_http else http_port)
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nsdi_tracker", "run", "-c", str(config), "--log-format",
            "json", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stop = asyncio.Event()
        base = f"http://127.0.0.1:{http_port}"
        poller = asyncio.create_task(asyncio.sleep(0) if args.no_http else poll(base, stop))
        rounds = timeouts = 0
        t0 = time.monotonic()
        try:
            assert daemon.stderr is not None
            async for raw in daemon.stderr:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if rec.get("event") != "round":
                    continue
                rounds += 1
                timeouts += rec["status"] == "timeout"
                rss = rss_mb(daemon.pid)
                if rounds % args.every == 0 or rounds in marks:
                    seen[rounds] = rss
                    print(f"round {rounds:>5}: RSS {rss:7.1f} MB", flush=True)
                if rounds >= args.rounds or time.monotonic() - t0 > 2 * args.rounds + 60:
                    break
        finally:
            stop.set()
            await poller
            if daemon.returncode is None:
                daemon.terminate()
            await asyncio.wait_for(daemon.wait(), 30)
            nsd.terminate()
            nsd.wait(10)
    print(f"{rounds} rounds of {args.names} names in {time.monotonic() - t0:.0f} s, "
          f"{timeouts} cut off")  # fmt: skip
    print("RSS at " + ", ".join(f"round {m}: {seen[m]:.1f} MB" for m in marks if m in seen))
    if 50 in seen and rounds in seen:
        print(f"growth from round 50 to round {rounds}: {seen[rounds] - seen[50]:+.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
