"""A real PostgreSQL for the tests (nsdi_tracker.sim.postgres: Debian's server, initdb in a
temporary folder, loopback only, run by an unprivileged user under root). One server per test
session; each test gets a database of its own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsdi_tracker.sim.postgres import Missing, Server, create


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="nsdi-pg-"))
    try:
        server = create(folder)
    except Missing as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"{exc} (`make test` installs it)")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr or exc.stdout}")
    try:
        yield server
    finally:
        server.stop()
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
