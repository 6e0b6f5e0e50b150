"""A real PostgreSQL for the tests: Debian's server binaries, a cluster made by initdb in a
temporary folder, listening on 127.0.0.1 and a free port only. PostgreSQL refuses to run as
root, so under root (CI) the cluster belongs to the unprivileged `postgres` user (or `nobody`)
and every server command runs as that user. One server per test session; each test gets a
database of its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail("PostgreSQL is missing: `make test` installs Debian's postgresql")
    return found[-1].parent


def _user() -> str | None:
    """Who runs the server: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.fail("no unprivileged user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    bin: Path
    user: str | None
    data: Path

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://tracker@{self.host}:{self.port}/{database}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, check=check, timeout=60
        )

    def ctl(self, *args: str) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self.run(str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-d", self.dsn(database),
                       "-c", sql)  # fmt: skip
        return out.stdout.strip()


def start(folder: Path) -> Server:
    """initdb and start a cluster in `folder` (which this function owns)."""
    bindir, user = _bin(), _user()
    folder.chmod(0o700)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = Server("127.0.0.1", _free_port(), bindir, user, folder / "data")
    server.run(str(bindir / "initdb"), "-D", str(server.data), "-U", "tracker",
               "--auth=trust", "--encoding=UTF8", "--no-sync")  # fmt: skip
    options = (
        f"-c listen_addresses={server.host} -p {server.port} -k {folder} "
        "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    )
    server.ctl("-o", options, "-l", str(folder / "server.log"), "-w", "-t", "60", "start")
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="nsdi-pg-"))
    try:
        server = start(folder)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr or exc.stdout}")
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.ctl("-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg(pg_server: Server) -> Iterator[str]:
    """A fresh database of the session's server; its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
