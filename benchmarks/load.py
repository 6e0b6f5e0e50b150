"""Load benchmark: the status server under 32 busy clients while rounds run every 3 s.

    .venv/bin/python benchmarks/load.py [--names 2000] [--clients 32] [--seconds 60]

Serves N names (70% present, 30% absent) from NSD on 127.0.0.1 and a high port, as the sweep
benchmark does, and starts the real daemon (`nsdi-tracker run`) on them with a round every 3 s
(jitter 0, round_timeout 2.7 s) and the status server on loopback. After a few quiet rounds,
CLIENTS concurrent clients (each one connection, one request at a time, no pause) ask for a
mix of what the status server answers (/api/status, /api/status?all=1, /healthz, /metrics,
/api/transitions?limit=100, /api/domains/NAME; a third of /api/status asks with If-None-Match
as a polling page would) for SECONDS seconds. Prints requests/s and p50/p99 latency per path,
and the rounds during the load: how many, how many cut off, the spacing of their starts and
their durations, against the quiet rounds before. Everything is bounded in time and count, and
nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import ensure_tools, free_port, name, serve_daemon

INTERVAL = 3.0
MIX = (  # (weight, path); NAME is a watched name
    (30, "/api/status"),
    (5, "/api/status?all=1"),
    (20, "/healthz"),
    (20, "/metrics"),
    (10, "/api/transitions?limit=100"),
    (15, "/api/domains/NAME"),
)


def scheduler_trouble(lines: list[str]) -> int:
    """Rounds the scheduler skipped or missed (each logged once)."""
    return sum(1 for x in lines if "skipped: the previous" in x or "was missed" in x)


def rounds_of(lines: list[str]) -> list[tuple[float, float, str]]:
    """(start, seconds, status) of each round the daemon logged."""
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "round":
            end = datetime.fromisoformat(rec["time"]).timestamp()
            out.append((end - rec["seconds"], rec["seconds"], rec["status"]))
    return out


async def client(
    base: str, names: int, until: float, seed: int, out: dict[str, list[float]], bad: list[int]
) -> None:
    rng = random.Random(seed)
    paths = [p for w, p in MIX for _ in range(w)]
    etag = None
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < until:
            path = rng.choice(paths)
            key = path
            headers = {}
            if path == "/api/status" and etag and rng.random() < 1 / 3:
                headers["If-None-Match"] = etag
                key = "/api/status (If-None-Match)"
            url = base + path.replace("NAME", name(rng.randrange(names)))
            t0 = time.perf_counter()
            try:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    if path == "/api/status" and r.status == 200:
                        etag = r.headers.get("ETag")
                    if r.status not in (200, 304) and not (path == "/healthz" and r.status == 503):
                        bad.append(r.status)
            except (aiohttp.ClientError, TimeoutError):
                bad.append(0)
            out.setdefault(key, []).append(time.perf_counter() - t0)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else 0.0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 1 <= args.seconds <= 600:
        raise SystemExit("--clients 1..256, --seconds 1..600")
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="nsdi-load-") as tmp:
        folder = Path(tmp)
        http_port = free_port()
        nsd, config = serve_daemon(folder, args.names, INTERVAL, 2.7, http_port)
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nsdi_tracker", "run", "-c", str(config), "--log-format",
            "json", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines: list[str] = []

        async def collect() -> None:
            assert daemon.stderr is not None
            async for raw in daemon.stderr:
                lines.append(raw.decode())

        reader = asyncio.create_task(collect())
        try:
            deadline = time.monotonic() + 120
            while len(rounds_of(lines)) < 6:  # the baselines, then quiet rounds
                if time.monotonic() > deadline or daemon.returncode is not None:
                    raise SystemExit("the daemon did not run 6 rounds:\n" + "".join(lines[-5:]))
                await asyncio.sleep(0.2)
            quiet = rounds_of(lines)[2:]
            start = time.time()
            out: dict[str, list[float]] = {}
            bad: list[int] = []
            until = time.monotonic() + args.seconds
            base = f"http://127.0.0.1:{http_port}"
            t0 = time.monotonic()
            await asyncio.gather(
                *(client(base, args.names, until, i, out, bad) for i in range(args.clients))
            )
            wall = time.monotonic() - t0
            await asyncio.sleep(INTERVAL + 1)  # the round under way when the load ended
            loaded = [r for r in rounds_of(lines) if start <= r[0] <= start + args.seconds]
        finally:
            if daemon.returncode is None:
                daemon.terminate()
            await asyncio.wait_for(daemon.wait(), 30)
            await reader
            nsd.terminate()
            nsd.wait(10)
    report(args, quiet, loaded, out, bad, wall)
    print(f"rounds skipped or missed by the scheduler: {scheduler_trouble(lines)}")
    return 0


def report(
    args: argparse.Namespace,
    quiet: list[tuple[float, float, str]],
    loaded: list[tuple[float, float, str]],
    out: dict[str, list[float]],
    bad: list[int],
    wall: float,
) -> None:
    total = sum(len(v) for v in out.values())
    every = [x for v in out.values() for x in v]
    print(f"{args.clients} clients for {wall:.0f} s against {args.names} names, "
          f"a round every {INTERVAL:g} s")  # fmt: skip
    print(f"requests: {total} ({total / wall:.0f}/s), p50 {pct(every, 50) * 1000:.1f} ms, "
          f"p99 {pct(every, 99) * 1000:.1f} ms, failed {len(bad)}")  # fmt: skip
    print(f"{'path':<34} {'n':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for path, values in sorted(out.items()):
        print(f"{path:<34} {len(values):>7} {len(values) / wall:>7.0f} "
              f"{pct(values, 50) * 1000:>8.1f} {pct(values, 99) * 1000:>8.1f}")  # fmt: skip
    for label, rounds in (("quiet", quiet), ("under load", loaded)):
        starts = [r[0] for r in rounds]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        cut = sum(1 for r in rounds if r[2] == "timeout")
        durations = [r[1] for r in rounds]
        print(
            f"rounds {label}: {len(rounds)}, cut off {cut}, spacing "
            f"{min(gaps, default=0):.2f}-{max(gaps, default=0):.2f} s "
            f"(worst {max((abs(g - INTERVAL) for g in gaps), default=0) / INTERVAL:.0%} off), "
            f"duration median {statistics.median(durations or [0]):.2f} s, "
            f"max {max(durations, default=0):.2f} s"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
