"""Sweep benchmark: tracker rounds over N names against NSD on loopback, for each build.

    make bench       # both builds: .venv/bin/python benchmarks/sweep.py --python ... --python ...
    .venv/bin/python benchmarks/sweep.py [--names N] [--large N] [--python PY]...

Installs NSD and dnsperf from Debian if missing (as root), writes a zone of N names (70% with
an A record, 30% absent, so NXDOMAIN) and serves it from NSD on 127.0.0.1 and a high port,
pinned to one CPU where possible. Measures the server's ceiling with dnsperf (-l 10) against
the same names, then runs the real `nsdi-tracker run --once` over the names as a plain-text
watchlist against two resolvers on that server (one national, one reference): a first round,
then the unchanged round --repeat times (each timed as a whole run: wall, queries/s, CPU per
query; the unchanged figures are the median run's: this machine's timings vary from run to
run). It does so with each --python (the build installed for that interpreter: the
tracker's rounds start in their own folder; by default .venv-compiled's, if there is one,
then the running interpreter's), and for the first of them also over the large watchlist
(default 1,000,000 names; memory and storage). After each, it times a dashboard frame
(120x50) and a CSV export of the change log from that database. Prints a table with a
column per build and size, writes JSON under benchmarks/results/, and stops every server it
started. Every run is bounded by --limit seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZONE = "bench.test"
CONTROLS = ("c1", "c2", "c3")


@dataclass
class RoundFigures:
    names: int
    build: str = ""
    queries: int = 0
    seconds: float = 0.0
    qps: float = 0.0
    cpu_us_per_query: float = 0.0
    peak_rss_mb: float = 0.0
    # The unchanged round, also a whole `run --once`: what a daemon does every interval (the
    # median of the repeated runs; every run's CPU per query in second_cpu_runs).
    second_cpu_runs: list[float] = field(default_factory=list)
    second_seconds: float = 0.0
    second_qps: float = 0.0
    second_cpu_us_per_query: float = 0.0
    db_bytes_first: int = 0
    db_bytes_second: int = 0
    timeouts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    finished: bool = True
    note: str = ""
    dashboard_frame_s: float = 0.0  # one 120x50 frame (read + draw) of the database after
    export_rows: int = 0  # the change log as CSV
    export_rows_per_s: float = 0.0


def ensure_tools(*packages: str) -> None:
    """Debian's packages the benchmark drives (NSD and dnsperf by default), installed by the
    tests' installer if missing (as root; never started as services)."""
    packages = packages or ("nsd", "dnsperf")
    script = HERE.parent / "tests" / "ensure-tools.sh"
    if subprocess.run([str(script), *packages]).returncode != 0:
        raise SystemExit(f"bench: could not install {' '.join(packages)} (see above)")


def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)
    raise SystemExit("no free port for UDP and TCP")


def name(i: int) -> str:
    return f"n{i:07d}.{ZONE}"


def write_zone(folder: Path, n: int) -> Path:
    """70% of the names get an A record; the rest do not exist. The addresses look globally
    routable (11.0.0.0/8), so the names classify as present the way real ones do (a private
    address would make them `tampered`); nothing is ever sent to them."""
    path = folder / f"{ZONE}.zone"
    with path.open("w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 300\n")
        f.write("@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n")
        for c in CONTROLS:
            f.write(f"{c} A 192.0.2.1\n")
        for i in range(n):
            if i % 10 < 7:
                f.write(f"n{i:07d} A 11.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    return path


def start_nsd(folder: Path, zone: Path, port: int) -> subprocess.Popen[bytes]:
    conf = folder / "nsd.conf"
    conf.write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    pidfile: "{folder}/nsd.pid"
    logfile: "{folder}/nsd.log"
    verbosity: 0
    hide-version: yes
    refuse-any: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{zone}"
"""
    )
    cmd = ["nsd", "-d", "-c", str(conf)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]  # the server on one CPU, the client on the other
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a big zone takes a while to load
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nsd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        if _answers(port):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("nsd did not answer within 120 s")


def _answers(port: int) -> bool:
    query = (
        bytes.fromhex("abcd01000001000000000000")
        + b"".join(bytes([len(p)]) + p.encode() for p in ("c1", *ZONE.split(".")))
        + b"\x00\x00\x01\x00\x01"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(query, ("127.0.0.1", port))
            return s.recv(512)[:2] == b"\xab\xcd"
        except OSError:
            return False


def dnsperf(folder: Path, port: int, n: int, seconds: int) -> float:
    data = folder / "queries.txt"
    with data.open("w") as f:
        for i in range(n):
            f.write(f"{name(i)} A\n{name(i)} AAAA\n")
    out = subprocess.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data), "-l", str(seconds),
         "-c", "4", "-q", "500"],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    match = re.search(r"Queries per second:\s+([\d.]+)", out.stdout)
    if not match:
        raise SystemExit(f"dnsperf: no figure in its output:\n{out.stdout}\n{out.stderr}")
    return float(match[1])


def write_config(folder: Path, port: int, n: int) -> Path:
    (folder / f"names-{n}.txt").write_text("".join(name(i) + "\n" for i in range(n)))
    controls = ", ".join(f'"{c}.{ZONE}"' for c in CONTROLS)
    lines = [
        f'watchlists = ["names-{n}.txt"]',
        f"controls = [{controls}]",
        f'negative_control_zone = "{ZONE}"',
        "retain_days = 0",
        "confirm = 1  # the first round records the baselines, so the second is unchanged",
        '[[sink]]\ntype = "log"\npath = "events.ndjson"',
    ]
    for resolver, role in (("nsdi", "national"), ("ref", "reference")):
        lines.append(
            f'[[resolver]]\nname = "{resolver}"\nrole = "{role}"\n'
            f'address = "127.0.0.1:{port}"\ntimeout = 2.0\nretries = 1\nmax_inflight = 512'
        )
    config = folder / f"bench-{n}.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def serve_daemon(
    folder: Path, n: int, interval: float, round_timeout: float, http_port: int | None
) -> tuple[subprocess.Popen[bytes], Path]:
    """NSD serving N names, and a daemon config on them: a round every `interval` (no
    jitter), changes confirmed over two rounds, the status server on `http_port` if given."""
    dns_port = free_port()
    nsd = start_nsd(folder, write_zone(folder, n), dns_port)
    config = write_config(folder, dns_port, n)
    text = config.read_text().replace("confirm = 1", "confirm = 2")
    head = f"interval = {interval}\njitter = 0\nround_timeout = {round_timeout}\n"
    http = f'[http]\nlisten = "127.0.0.1:{http_port}"\n' if http_port else ""
    config.write_text(head + text + http)
    return nsd, config


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def one_round(
    python: str, config: Path, db: Path, limit: float
) -> tuple[float, float, float, bool]:
    """Run `nsdi-tracker run --once`; (wall s, cpu s, peak RSS MB, finished)."""
    cmd = [python, "-m", "nsdi_tracker", "run", "--once", "-c", str(config),
           "--db", str(db), "--deliver-timeout", "1", "--log-format", "text"]  # fmt: skip
    start = time.perf_counter()
    log = config.with_suffix(".log").open("a")
    # from the run's folder: `-m` then finds the build installed for this interpreter, never
    # the source tree of the folder the benchmark was started in
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=config.parent)
    finished = True
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > limit:
            proc.send_signal(signal.SIGTERM)
            pid, status, usage = os.wait4(proc.pid, 0)
            finished = False
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    log.close()
    if finished and os.waitstatus_to_exitcode(status) != 0:
        err = config.with_suffix(".log").read_text()
        raise SystemExit(f"round failed: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, finished


def last_round(db: Path) -> tuple[int, dict[str, int]]:
    """(queries, outcomes) of the database's last round."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        queries, outcomes = conn.execute(
            "SELECT queries, outcomes FROM rounds ORDER BY id DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()  # an open reader would keep the -wal and -shm files (and their bytes)
    return int(queries), json.loads(outcomes)


def measure(
    python: str, folder: Path, port: int, n: int, limit: float, repeat: int
) -> RoundFigures:
    config = write_config(folder, port, n)
    db = folder / f"bench-{n}.db"
    for old in folder.glob(db.name + "*"):
        old.unlink()  # another build's database of the same size
    fig = RoundFigures(names=n, build=build_of(python))
    wall, cpu, rss, done = one_round(python, config, db, limit)
    fig.db_bytes_first = db_bytes(db)
    fig.peak_rss_mb = round(rss, 1)
    fig.finished = done
    if not done:
        fig.note = f"first round cut off after {limit:g} s"
        return fig
    queries, outcomes = last_round(db)
    fig.queries = queries
    fig.outcomes = outcomes
    fig.timeouts = fig.outcomes.get("timeout", 0) + fig.outcomes.get("error", 0)
    fig.seconds = round(wall, 2)
    fig.qps = round(queries / wall, 1)
    fig.cpu_us_per_query = round(cpu / queries * 1e6, 1)
    runs: list[tuple[float, float, int]] = []  # (cpu us per query, wall s, queries)
    for _ in range(repeat):
        wall2, cpu2, rss2, done2 = one_round(python, config, db, limit)
        fig.peak_rss_mb = round(max(fig.peak_rss_mb, rss2), 1)
        if not done2:
            fig.note = "unchanged round cut off"
            break
        queries2, outcomes2 = last_round(db)
        fig.timeouts += outcomes2.get("timeout", 0) + outcomes2.get("error", 0)
        runs.append((cpu2 / queries2 * 1e6, wall2, queries2))
    fig.db_bytes_second = (db_bytes(db) - fig.db_bytes_first) // max(len(runs), 1)
    if runs:
        fig.second_cpu_runs = [round(r[0], 1) for r in runs]
        cpu_us, wall2, queries2 = sorted(runs)[len(runs) // 2]
        fig.second_seconds = round(wall2, 2)
        fig.second_qps = round(queries2 / wall2, 1)
        fig.second_cpu_us_per_query = round(cpu_us, 1)
    fig.dashboard_frame_s, fig.export_rows, fig.export_rows_per_s = readers(db)
    return fig


def build_of(python: str) -> str:
    """What `nsdi-tracker --version` says for this interpreter, run outside the source tree."""
    return subprocess.run(
        [python, "-m", "nsdi_tracker", "--version"],
        cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def readers(db: Path) -> tuple[float, int, float]:
    """The dashboard's frame for a 120x50 terminal (best of three, read and draw) and a CSV
    export of the change log to /dev/null (rows, rows/s), as the CLI does them."""
    import io

    from rich.console import Console

    from nsdi_tracker.core.clock import utcnow
    from nsdi_tracker.store.sqlite import Store
    from nsdi_tracker.ui.dashboard import read, render
    from nsdi_tracker.ui.export import write_csv

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        console = Console(width=120, height=50, file=io.StringIO(), color_system="truecolor")
        console.print(render(read(db, utcnow(), 300, (120, 50)), 120, 50))
        best = min(best, time.perf_counter() - start)
    with Store.open_readonly(db) as store, open(os.devnull, "w") as sink:
        start = time.perf_counter()
        rows = write_csv(store.changelog_csv(), sink)
        took = time.perf_counter() - start
    return round(best, 3), rows, round(rows / took, 0)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=200_000)
    parser.add_argument("--large", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--dnsperf-seconds", type=int, default=10)
    parser.add_argument("--limit", type=float, default=900, help="seconds per round, at most")
    parser.add_argument("--repeat", type=int, default=3, help="unchanged rounds per size")
    parser.add_argument(
        "--python", action="append", default=[],
        help="an interpreter whose installed build to measure (repeatable; default: "
        ".venv-compiled's if there is one, then this one)",
    )  # fmt: skip
    args = parser.parse_args()
    compiled = HERE.parent / ".venv-compiled" / "bin" / "python"
    pythons = args.python or [*([str(compiled)] if compiled.exists() else []), sys.executable]
    pythons = [os.path.abspath(p) for p in pythons]  # not resolved: a venv's python is a link
    builds = [build_of(p) for p in pythons]
    ensure_tools()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per query in flight
    folder = Path(tempfile.mkdtemp(prefix="nsdi-bench-"))
    biggest = max(args.names, args.large)
    port = free_port()
    t0 = time.perf_counter()
    nsd = start_nsd(folder, write_zone(folder, biggest), port)
    for python, build in zip(pythons, builds, strict=True):
        print(f"bench: measuring {build} ({python})", flush=True)
    print(f"bench: NSD on 127.0.0.1:{port} with {biggest:,} names, loaded in "
          f"{time.perf_counter() - t0:.0f} s; work folder {folder}", flush=True)  # fmt: skip
    runs: list[RoundFigures] = []
    try:
        ceiling = dnsperf(folder, port, args.names, args.dnsperf_seconds)
        print(f"bench: dnsperf {ceiling:,.0f} queries/s", flush=True)
        for i, python in enumerate(pythons):
            sizes = [args.names, *([args.large] if args.large and i == 0 else [])]
            for n in sizes:
                runs.append(measure(python, folder, port, n, args.limit, args.repeat))
                print(f"bench: {runs[-1].build}, {n:,} names done", flush=True)
    finally:
        nsd.send_signal(signal.SIGTERM)
        try:
            nsd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            nsd.kill()
    print_table(runs, ceiling)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"dnsperf_qps": ceiling, "cpus": os.cpu_count(),
                               "runs": [asdict(r) for r in runs]}, indent=2))  # fmt: skip
    print(f"bench: results in {out}")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def print_table(runs: list[RoundFigures], ceiling: float) -> None:
    rows = [
        ("names", lambda r: f"{r.names:,}"),
        ("queries", lambda r: f"{r.queries:,}"),
        ("wall time", lambda r: f"{r.seconds:.1f} s"),
        ("queries/s", lambda r: f"{r.qps:,.0f}"),
        ("vs dnsperf", lambda r: f"{r.qps / ceiling:.2f} x" if ceiling else "-"),
        ("CPU per query", lambda r: f"{r.cpu_us_per_query:.1f} us"),
        ("unchanged wall time", lambda r: f"{r.second_seconds:.1f} s"),
        ("unchanged queries/s", lambda r: f"{r.second_qps:,.0f}"),
        ("unchanged vs dnsperf", lambda r: f"{r.second_qps / ceiling:.2f} x" if ceiling else "-"),
        ("unchanged CPU/query", lambda r: f"{r.second_cpu_us_per_query:.1f} us"),
        ("  every run", lambda r: "/".join(f"{c:.0f}" for c in r.second_cpu_runs) or "-"),
        ("peak RSS", lambda r: f"{r.peak_rss_mb:.0f} MB"),
        ("timeouts + errors", lambda r: f"{r.timeouts:,}"),
        ("DB after round 1", lambda r: f"{r.db_bytes_first / 1e6:.1f} MB"),
        ("DB added, unchanged", lambda r: f"{r.db_bytes_second / 1e3:.1f} KB"),
        ("dashboard frame", lambda r: f"{r.dashboard_frame_s:.2f} s"),
        ("CSV export", lambda r: f"{r.export_rows_per_s:,.0f} rows/s"),
        ("note", lambda r: r.note or "-"),
    ]
    short = [("compiled" if "compiled" in r.build else "pure") for r in runs]
    print(f"\n{'':<22}" + "".join(f"{b:>16}" for b in short))
    for label, get in rows:
        print(f"{label:<22}" + "".join(f"{get(r):>16}" for r in runs))
    print(f"{'dnsperf ceiling':<22}{ceiling:>16,.0f}")


if __name__ == "__main__":
    sys.exit(main())
