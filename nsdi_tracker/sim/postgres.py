"""A throw-away PostgreSQL on loopback for the tests, the benchmarks and the fleet's demo:
Debian's server binaries, a cluster made by initdb in a folder of its own, listening on
127.0.0.1 and a free port only, trusting local connections as `tracker`. PostgreSQL refuses
to run as root, so under root the cluster belongs to the unprivileged `postgres` user (or
`nobody`) and every server command runs as that user (through runuser).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


class Missing(RuntimeError):
    """No PostgreSQL server binaries, or no user to run them as."""


def binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise Missing("PostgreSQL is missing: apt-get install postgresql (Debian)")
    return found[-1].parent


def runner_user() -> str | None:
    """Who runs the server: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise Missing("no unprivileged user to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    bin: Path
    user: str | None
    folder: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://tracker@{self.host}:{self.port}/{database}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, check=check, timeout=120
        )

    def ctl(self, *args: str) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)

    def start(self) -> None:
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.folder} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self.ctl("-o", options, "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                 check=False)  # fmt: skip

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self.run(str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-d", self.dsn(database),
                       "-c", sql)  # fmt: skip
        return out.stdout.strip()


def create(folder: Path) -> Server:
    """initdb a cluster in `folder` (which it then owns) and start it."""
    bindir, user = binaries(), runner_user()
    folder.chmod(0o700)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = Server("127.0.0.1", free_port(), bindir, user, folder)
    server.run(str(bindir / "initdb"), "-D", str(server.data), "-U", "tracker",
               "--auth=trust", "--encoding=UTF8", "--no-sync")  # fmt: skip
    server.start()
    return server
