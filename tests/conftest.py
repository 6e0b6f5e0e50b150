"""Shared fixtures: simulated resolvers on loopback and configs that point at them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from postgres import pg, pg_server  # noqa: F401  (fixtures: a real PostgreSQL)

from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.settings.config import Config, load_config
from nsdi_tracker.sim import (
    CONTROL_ADDRESSES,
    SimDoH,
    SimResolver,
    Zone,
    answer,
    answering,
    nxdomain,
)

# Public-looking addresses (the simulated resolvers never route anywhere; nothing is contacted).
CONTROL_ADDRS = CONTROL_ADDRESSES


def with_controls(zone: Zone) -> Zone:
    return answering(CONTROL_ADDRESSES, zone)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def sim() -> AsyncIterator[Callable[..., object]]:
    """A factory of started simulated resolvers, all stopped at the end of the test."""
    started: list[SimResolver | SimDoH] = []

    async def make(zone: Zone | None = None, *, doh: ssl.SSLContext | None = None) -> object:
        zone = with_controls(zone if zone is not None else Zone())
        server: SimResolver | SimDoH = SimDoH(zone, doh) if doh else SimResolver(zone)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


def write_config(
    tmp_path: Path,
    resolvers: list[dict[str, object]],
    *,
    domains: list[str] | None = None,
    extra: str = "",
) -> Path:
    """Write a config (and a text watchlist) for the given resolver tables; return its path."""
    lines: list[str] = []
    lines.append(f"controls = {list(CONTROL_ADDRS)!r}".replace("'", '"'))
    if domains is not None:
        (tmp_path / "watch.txt").write_text("\n".join(domains) + "\n")
        lines.append('watchlists = ["watch.txt"]')
    lines.append(extra)
    for r in resolvers:
        lines.append("[[resolver]]")
        for k, v in r.items():
            lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}")
    path = tmp_path / "nsdi-tracker.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def local_config(tmp_path: Path, resolvers: list[dict[str, object]], **kw: object) -> Config:
    return load_config(write_config(tmp_path, resolvers, **kw), KINDS)  # type: ignore[arg-type]


async def run_cli(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    """Run the real CLI in a child process; return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "nsdi_tracker", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Receiver:
    """A local webhook receiver that can fail, be slow, or go down and come back on its port."""

    def __init__(self) -> None:
        from aiohttp import web

        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0  # answer this many requests with HTTP 500
        self.delay = 0.0
        self.held = asyncio.Event()  # cleared: requests are taken and wait until it is set
        self.held.set()
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._app = app

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        await self.held.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="try later")
        self.received.append((dict(request.headers), body))
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self._app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


class Harness:
    """Two simulated resolvers (national, reference), a config and a database on tmp_path."""

    ADDR = "142.250.74.46"

    def __init__(self, tmp_path: Path, nat: Zone, ref: Zone, cfg: Path) -> None:
        self.tmp_path, self.nat, self.ref, self.cfg_path = tmp_path, nat, ref, cfg
        self.db = tmp_path / "db" / "t.db"

    def config(self) -> Config:
        return load_config(self.cfg_path, KINDS)

    def remove(self, name: str) -> None:
        self.nat.set(name, nxdomain())

    def restore(self, name: str) -> None:
        self.nat.set(name, answer(self.ADDR))

    async def round(self, store: Any, **kw: Any) -> Any:
        from nsdi_tracker.rounds.tracker import persisted_round
        from nsdi_tracker.settings.watchlist import load_watchlists

        config = self.config()
        return await persisted_round(config, load_watchlists(config.watchlists), store, **kw)


@pytest.fixture
async def harness(sim: Any, tmp_path: Path) -> Callable[..., Any]:
    async def make(domains: list[str], extra: str = "") -> Harness:
        nat, ref = Zone(), Zone()
        for d in domains:
            nat.set(d, answer(Harness.ADDR))
            ref.set(d, answer(Harness.ADDR))
        a, b = await sim(nat), await sim(ref)
        cfg = write_config(
            tmp_path,
            [
                {"name": "nsdi-a", "role": "national", "address": a.address},
                {
                    "name": "ref",
                    "role": "reference",
                    "address": b.address,
                    "timeout": 0.5,
                    "retries": 1,
                },
            ],
            domains=domains,
            extra='database = "db/t.db"\n' + extra,
        )
        return Harness(tmp_path, nat, ref, cfg)

    return make


# Runs a command that file modes bind: root ignores them, so under root (CI runs as root)
# it drops CAP_DAC_OVERRIDE, and the files root owns are guarded by their owner bits as a
# user's own files are. It keeps CAP_DAC_READ_SEARCH: wherever the checkout lives, it reads.
UNPRIVILEGED = ("setpriv", "--bounding-set=-dac_override") if os.geteuid() == 0 else ()


FAST = 'interval = 1\njitter = 0\nround_timeout = 0.8\ngrace = 5\n[http]\nlisten = "127.0.0.1:0"\n'


class DaemonProcess:
    """`nsdi-tracker run` in a child process; its JSON log lines are collected as they come."""

    def __init__(self, cfg: Path, *args: str, prefix: tuple[str, ...] = ()) -> None:
        self.cfg, self.args, self.prefix = cfg, args, prefix  # prefix: e.g. run as another user
        self.logs: list[dict[str, Any]] = []
        self.stdout: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> DaemonProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *self.prefix, sys.executable, "-m", "nsdi_tracker", "run", "-c", str(self.cfg),
            "--log-format", "json", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stderr, self._log_line)),
            asyncio.create_task(self._read(self.proc.stdout, self.stdout.append)),
        ]
        return self

    async def _read(self, stream: asyncio.StreamReader, sink: Callable[[str], None]) -> None:
        async for raw in stream:
            sink(raw.decode().rstrip("\n"))

    def _log_line(self, line: str) -> None:
        try:
            self.logs.append(json.loads(line))
        except ValueError:
            self.logs.append({"level": "raw", "message": line})

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 15, start: int = 0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.logs[start:]:
                if pred(line):
                    return line
            assert self.proc is not None
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such log line; logs: {self.logs[-8:]}")

    def rounds(self, start: int = 0) -> list[dict[str, Any]]:
        return [x for x in self.logs[start:] if x.get("event") == "round"]

    async def wait_rounds(self, n: int, start: int = 0, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.rounds(start)) < n:
            assert time.monotonic() < deadline, f"{n} rounds not seen; logs: {self.logs[-8:]}"
            await asyncio.sleep(0.05)

    @property
    def base(self) -> str:
        line = next(x for x in self.logs if x.get("event") == "listening")
        return f"http://{line['address']}"

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.get(self.base + path) as r:
            return r.status, await r.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._readers)
        return code


@pytest.fixture
async def daemon() -> Any:
    started: list[DaemonProcess] = []

    async def make(cfg: Path, *args: str, prefix: tuple[str, ...] = ()) -> DaemonProcess:
        d = await DaemonProcess(cfg, *args, prefix=prefix).start()
        started.append(d)
        await d.wait_for(lambda x: x.get("event") == "started")
        return d

    yield make
    for d in started:
        if d.proc is not None and d.proc.returncode is None:
            d.proc.kill()
            await d.proc.wait()
