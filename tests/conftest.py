"""Shared fixtures: simulated resolvers on loopback and configs that point at them."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from nsdi_tracker.config import Config, load_config
from nsdi_tracker.sim import SimDoH, SimResolver, Zone, answer

# Public-looking addresses (the simulated resolvers never route anywhere; nothing is contacted).
CONTROL_ADDRS = {"ya.ru": "5.255.255.242", "vk.com": "87.240.132.72"}


def with_controls(zone: Zone) -> Zone:
    for name, addr in CONTROL_ADDRS.items():
        zone.set(name, answer(addr))
    return zone


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
    return load_config(write_config(tmp_path, resolvers, **kw))  # type: ignore[arg-type]


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the real CLI in a child process; return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nsdi_tracker", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
