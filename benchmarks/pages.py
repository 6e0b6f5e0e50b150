"""Page benchmark: how fast the web page answers for a 100,000-domain database.

    make bench-pages                # or: .venv/bin/python benchmarks/pages.py [--names N]

Builds the database the way the tracker does: two NSDs on loopback serve N names (70% with
an address), and the real `nsdi-tracker run --once` measures them three times, one NSD as the
national resolver and one as the reference (a TOML watchlist with labels and ten categories):
the baselines, then a round where 5% of the names are gone from the national zone, then one
where half of those are back. Then `nsdi-tracker serve --db` publishes it on loopback, and
every page is asked once (read from the database) and then --repeat times more (the server
keeps a page's read until the next round): the overview (first page, a deep page, each
filter, a search), a removed domain's page, a transition's page, the change log (first page,
filtered, an older page), the resolvers and the Atom feed. Prints each page's first time,
its median when asked again and its worst, and writes JSON under benchmarks/results/.
Installs NSD from Debian if missing.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sweep  # noqa: E402  (the NSD and `run --once` helpers)

CATEGORIES = ("video", "news", "messaging", "social", "search", "shop", "maps", "mail", "tv",
              "radio")  # fmt: skip
TARGET_S = 0.5


def write_watchlist(folder: Path, n: int) -> Path:
    path = folder / f"names-{n}.toml"
    with path.open("w") as f:
        for i in range(n):
            f.write(f'[[entry]]\ndomain = "{sweep.name(i)}"\nlabel = "Site {i}"\n'
                    f'category = "{CATEGORIES[i % len(CATEGORIES)]}"\n')  # fmt: skip
    return path


def write_zone(folder: Path, n: int, gone: set[int]) -> Path:
    path = sweep.write_zone(folder, n)
    if gone:
        lines = path.read_text().splitlines(keepends=True)
        drop = {f"n{i:07d} " for i in gone}
        path.write_text("".join(x for x in lines if x[:9] not in drop))
    return path


def build(folder: Path, n: int, limit: float) -> Path:
    """The database: three recorded rounds over N names, with removals and restorations. The
    national resolver is one NSD whose zone loses names; the reference, another, keeps them."""
    nat_dir, ref_dir = folder / "national", folder / "reference"
    nat_dir.mkdir(exist_ok=True)
    ref_dir.mkdir(exist_ok=True)
    nat_port = ref_port = sweep.free_port()
    while ref_port == nat_port:
        ref_port = sweep.free_port()
    config = sweep.write_config(folder, nat_port, n)
    watchlist = write_watchlist(folder, n)
    text = config.read_text().replace(f'"names-{n}.txt"', f'"{watchlist.name}"')
    head, _, reference = text.rpartition("[[resolver]]")
    reference = reference.replace(f"127.0.0.1:{nat_port}", f"127.0.0.1:{ref_port}")
    config.write_text(head + "[[resolver]]" + reference)
    db = folder / "pages.db"
    removed = {i for i in range(n) if i % 20 == 1}  # all present in the zone (i % 10 < 7)
    ref = sweep.start_nsd(ref_dir, write_zone(ref_dir, n, set()), ref_port)
    try:
        for step, gone in enumerate((set(), removed, {i for i in removed if i % 40 == 1})):
            nsd = sweep.start_nsd(nat_dir, write_zone(nat_dir, n, gone), nat_port)
            try:
                start = time.perf_counter()
                _, _, _, finished = sweep.one_round(config, db, limit)
                if not finished:
                    raise SystemExit(f"round {step + 1} overran {limit:g} s")
                print(f"  round {step + 1}: {time.perf_counter() - start:.0f} s", flush=True)
            finally:
                nsd.send_signal(signal.SIGTERM)
                nsd.wait(30)
    finally:
        ref.send_signal(signal.SIGTERM)
        ref.wait(30)
    return db


def serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsdi_tracker", "serve", "--db", str(db), "--listen",
         "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"on (http://\S+)/ ", line)
    if not found:
        proc.kill()
        raise SystemExit(f"serve did not start: {line}")
    return proc, found.group(1)


def fetch(url: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
        status = r.status
    return time.perf_counter() - start, status, len(body)


def pages(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        (removed,) = conn.execute(
            "SELECT domain FROM changelog WHERE type = 'removed' AND scope = 'national' LIMIT 1"
        ).fetchone()
        (event,) = conn.execute(
            "SELECT event_id FROM changelog WHERE type = 'restored' LIMIT 1"
        ).fetchone()
        (middle,) = conn.execute(
            "SELECT id FROM transitions ORDER BY id LIMIT 1 OFFSET "
            "(SELECT COUNT(*) / 2 FROM transitions)"
        ).fetchone()
        (total,) = conn.execute("SELECT COUNT(*) FROM domains").fetchone()
    finally:
        conn.close()
    deep = max(1, total // 100 // 2)
    return [
        ("overview", "/"),
        (f"overview, page {deep}", f"/?page={deep}"),
        ("overview, removed", "/?verdict=removed"),
        ("overview, absent, page 2", "/?verdict=absent&page=2"),
        ("overview, a category", "/?category=news"),
        ("overview, a search", "/?q=n00999"),
        ("overview, in Russian", "/?lang=ru"),
        ("a removed domain", f"/domains/{removed}"),
        ("a transition", f"/changes/{event}"),
        ("change log", "/changes"),
        ("change log, removed", "/changes?type=removed"),
        ("change log, an older page", f"/changes?before={middle}"),
        ("resolvers", "/resolvers"),
        ("Atom feed", "/feed.atom"),
        ("Atom feed, removed+restored", "/feed.atom?type=removed,restored"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=float, default=900, help="seconds a round may take")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: temp)")
    args = parser.parse_args()
    sweep.ensure_tools()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nsdi-pages-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "pages.db"
    if not db.exists():
        print(f"building a {args.names:,}-domain database in {folder} ...", flush=True)
        db = build(folder, args.names, args.limit)
    proc, base = serve(db)
    results = []
    try:
        for title, path in pages(db):
            first, status, size = fetch(base + path)  # read from the database
            again = [fetch(base + path)[0] for _ in range(args.repeat)]  # then as kept
            results.append({"page": title, "path": path, "status": status, "bytes": size,
                            "first_s": round(first, 3),
                            "again_median_s": round(statistics.median(again), 3),
                            "worst_s": round(max(first, *again), 3)})  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    print(f"\n{args.names:,} domains; each page asked once, then {args.repeat} times more:\n")
    print(f"{'page':32} {'first':>8} {'again':>8} {'worst':>8} {'KB':>6}")
    for r in results:
        flag = "" if r["worst_s"] < TARGET_S and r["status"] == 200 else "  <-- over target"
        print(f"{r['page']:32} {r['first_s']:7.3f}s {r['again_median_s']:7.3f}s "
              f"{r['worst_s']:7.3f}s {r['bytes'] / 1024:6.0f}{flag}")  # fmt: skip
    worst = max(r["worst_s"] for r in results)
    print(f"\nslowest page: {worst:.3f} s (target: every page under {TARGET_S} s)")
    out = HERE / "results" / f"pages-{args.names}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"names": args.names, "pages": results}, indent=2) + "\n")
    print(f"written: {out}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
