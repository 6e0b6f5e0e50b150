"""Replay the Docker image where no Docker engine runs (CI, the build machines).

Reads the Dockerfile, runs the same install script into a scratch folder standing for the
image's root, then starts the image's ENTRYPOINT + CMD with its ENV, as its USER, against
simulated resolvers on loopback (a config folder "mounted" over /config), and checks what
`docker run` would show: the HEALTHCHECK command turns healthy, /healthz, the page and
/metrics answer, a removal is confirmed, and the STOPSIGNAL ends it with exit 0.

The only liberties: paths are moved under the scratch root, and the status server listens on
127.0.0.1 and a free port instead of the container's 0.0.0.0:8080.

    python3 docker/smoke.py            (as root it also creates and uses the image's user)
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The image's folders, as docker/install.sh creates them; moved under the scratch root here.
IMAGE_PATHS = ("/opt/nsdi-tracker", "/config", "/data")


@dataclass
class Image:
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    stopsignal: str = "SIGTERM"
    runs: list[str] = field(default_factory=list)


def parse(text: str) -> Image:
    """The instructions this image uses, from a Dockerfile (continuations joined)."""
    image = Image()
    joined = re.sub(r"\\\n", " ", text)
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                image.env[key] = re.sub(
                    r"\$(\w+)|\$\{(\w+)\}",
                    lambda m: image.env.get(m[1] or m[2], os.environ.get(m[1] or m[2], "")),
                    value,
                )
        elif word == "USER":
            image.user = rest
        elif word == "WORKDIR":
            image.workdir = rest
        elif word == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif word == "CMD":
            image.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            image.healthcheck = json.loads(rest[rest.index("CMD ") + 4 :])
        elif word == "EXPOSE":
            image.expose += rest.split()
        elif word == "VOLUME":
            image.volumes += json.loads(rest) if rest.startswith("[") else rest.split()
        elif word == "STOPSIGNAL":
            image.stopsignal = rest
        elif word == "RUN":
            image.runs.append(rest)
    return image


def reroot(value: str, root: Path) -> str:
    for path in IMAGE_PATHS:
        value = re.sub(rf"(?<![\w/]){re.escape(path)}(?=/|:|$)", f"{root}{path}", value)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait(what: str, check: object, timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        if proc.poll() is not None:
            raise SystemExit(f"image smoke: FAILED: the daemon exited ({proc.returncode})")
        time.sleep(0.3)
    raise SystemExit(f"image smoke: FAILED: {what} within {timeout:g} s")


def main() -> int:
    image = parse((REPO / "Dockerfile").read_text())
    assert image.user != "root", "the image must not run as root"
    assert any("docker/install.sh" in r for r in image.runs), "the image must use install.sh"
    root = Path(tempfile.mkdtemp(prefix="nsdi-image-"))
    os.chmod(root, 0o755)
    as_root = os.geteuid() == 0
    t0 = time.monotonic()
    install_env = {
        **os.environ,
        "NSDI_APP": f"{root}/opt/nsdi-tracker",
        "NSDI_DATA": f"{root}/data",
        "NSDI_CONFIG": f"{root}/config",
        # The image's python is /usr/local/bin/python3, which any user can run; here that
        # is Debian's, as a Python under /root (pyenv's, say) is out of the user's reach.
        **({"PYTHON": "/usr/bin/python3"} if as_root else {}),
    }
    subprocess.run(["sh", str(REPO / "docker/install.sh"), str(REPO)], env=install_env, check=True)
    print(f"image smoke: installed in {time.monotonic() - t0:.0f} s under {root}", flush=True)
    said = subprocess.run(
        [f"{root}/opt/nsdi-tracker/bin/nsdi-tracker", "--version"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The image installs gcc for its build, as this machine has it: the compiled build.
    assert said.endswith("(compiled with mypyc)"), f"the image's build: {said}"
    print(f"image smoke: {said}", flush=True)

    env = {"HOME": "/nonexistent" if as_root else os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update({k: reroot(v, root) for k, v in image.env.items()})
    env["PATH"] = reroot(image.env.get("PATH", ""), root)
    port = free_port()
    container_port = image.env["NSDI_TRACKER_LISTEN"].rsplit(":", 1)[1]
    assert f"{container_port}" in " ".join(image.expose), "EXPOSE and NSDI_TRACKER_LISTEN differ"
    env["NSDI_TRACKER_LISTEN"] = f"127.0.0.1:{port}"
    env["TINI_SUBREAPER"] = "1"  # tini is not PID 1 here, as it is in the container
    python = f"{root}/opt/nsdi-tracker/bin/python"

    # "docker run -v ./my-config:/config": a config folder pointing at loopback simulators.
    sims = subprocess.Popen(
        [python, "-m", "nsdi_tracker.sim", "--out", f"{root}/config", "--interval", "2"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sims.stdout is not None
    print("image smoke:", sims.stdout.readline().strip(), flush=True)
    # As USER, with no intermediate process: the signal reaches tini as it does PID 1.
    drop: dict[str, object] = (
        {"user": image.user, "group": image.user, "extra_groups": []} if as_root else {}
    )
    workdir = reroot(image.workdir, root)
    entry = [*image.entrypoint, *image.cmd]
    if image.entrypoint and image.entrypoint[0] == "tini" and not _which("tini", env):
        raise SystemExit("image smoke: FAILED: tini is not installed (apt-get install tini)")
    log_path = root / "daemon.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    daemon = subprocess.Popen(
        entry, env=env, cwd=workdir, stderr=log_file, text=True, start_new_session=True, **drop
    )  # type: ignore[call-overload]
    try:

        def healthy() -> bool:
            r = subprocess.run(
                image.healthcheck, env=env, cwd=workdir, capture_output=True, text=True, **drop
            )  # type: ignore[call-overload]
            return bool(r.returncode == 0)

        wait("the HEALTHCHECK command to pass", healthy, 60, daemon)
        base = f"http://127.0.0.1:{port}"
        status, body = get(base + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        wait(
            "verdicts confirmed in /metrics",
            lambda: (
                'domain="youtube.com",scope="national",verdict="present"'
                in get(base + "/metrics")[1]
            ),
            30,
            daemon,
        )
        status, body = get(base + "/")  # the page, from the templates the image ships
        assert status == 200 and 'data-domain="youtube.com"' in body, body[:500]
        (root / "config" / "removed").write_text("youtube.com\n")
        wait(
            "a confirmed removal",
            lambda: (
                'domain="youtube.com",scope="national",verdict="removed"'
                in get(base + "/metrics")[1]
            ),
            30,
            daemon,
        )
        db = Path(env["NSDI_TRACKER_DB"])
        assert db.is_file(), f"no database at {db}"
        if as_root:
            assert db.stat().st_uid != 0, "the database must belong to the image's user"
        daemon.send_signal(getattr(signal, image.stopsignal))
        code = daemon.wait(timeout=30)
        assert code == 0, f"exit code {code} after {image.stopsignal}"
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)  # tini and the daemon
            daemon.wait()
        sims.send_signal(signal.SIGTERM)
        sims.wait(timeout=10)
        log_file.close()
        log = log_path.read_text()
        if sys.exc_info()[0] is not None:
            print(log[-4000:], file=sys.stderr)
    collector = check_collector(python, env, drop, workdir, root)
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    rounds = [x for x in lines if x.get("event") == "round"]
    removed = [x for x in rounds if x.get("transitions")]
    print(
        f"image smoke: ok in {time.monotonic() - t0:.0f} s: {len(rounds)} rounds, "
        f"healthy, removal confirmed in round {removed[-1]['round'] if removed else '?'}, "
        f"{image.stopsignal} -> exit 0, user {image.user if as_root else getpass.getuser()}",
        flush=True,
    )
    print(f"image smoke: {collector}", flush=True)
    return 0


# A throw-away PostgreSQL (Debian's, as the tests use) until stdin closes; prints its DSN.
_POSTGRES = """
import shutil, sys, tempfile
from pathlib import Path
from nsdi_tracker.sim.postgres import create
folder = Path(tempfile.mkdtemp(prefix="nsdi-smoke-pg-"))
server = create(folder)
print(server.dsn(), flush=True)
sys.stdin.read()
server.stop()
shutil.rmtree(folder, ignore_errors=True)
"""


def check_collector(
    python: str, env: dict[str, str], drop: dict[str, object], cwd: str, root: Path
) -> str:
    """docker-compose.fleet.yml's collector: the image's command with the compose file's
    config (docker/fleet/collector.toml, "mounted" under the scratch root) and environment,
    as the image's user, against a throw-away PostgreSQL standing for the compose file's;
    /healthz answers, SIGTERM ends it."""
    compose = (REPO / "docker-compose.fleet.yml").read_text()
    block = compose[compose.index("\n  collector:") : compose.index("\n  probe:")]
    found = re.search(r"command: (\[.*\])", block)
    assert found, "the fleet compose file's collector has no command"
    command = json.loads(found[1])
    for source, target in re.findall(r"- (\./[^:\s]+):(/[^:\s]+)", block):
        placed = Path(reroot(target, root) if target.startswith(IMAGE_PATHS) else f"{root}{target}")
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.write_text((REPO / source).read_text())
        placed.parent.chmod(0o755)
        if target == command[-1]:
            command[-1] = str(placed)
    probes = re.findall(r"^\s+(NSDI_PROBE_\w+):", block, re.MULTILINE)
    port = free_port()
    postgres = subprocess.Popen(
        [python, "-c", _POSTGRES], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert postgres.stdout is not None and postgres.stdin is not None
    dsn = postgres.stdout.readline().strip()
    run_env = {**env, "NSDI_COLLECTOR_DSN": dsn, **dict.fromkeys(probes, "smoke-token-0123456789")}
    proc = subprocess.Popen(
        [*command, "--listen", f"127.0.0.1:{port}"],
        env=run_env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **drop,
    )  # type: ignore[call-overload]
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait("the collector's /healthz", lambda: _answers(url), 60, proc)
        health = json.loads(get(url)[1])
        assert health["status"] == "ok" and health["probes"] >= 1, health
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, f"the collector's exit code {code} after SIGTERM"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        postgres.stdin.close()
        postgres.wait(timeout=30)
    return (
        f"the fleet compose file's collector ({' '.join(command[:2])}, its config and "
        f"environment) healthy on PostgreSQL with {health['probes']} probe, SIGTERM -> exit 0"
    )


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


def _which(name: str, env: dict[str, str]) -> bool:
    from shutil import which

    return which(name, path=env["PATH"]) is not None


if __name__ == "__main__":
    sys.exit(main())
