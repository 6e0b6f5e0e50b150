"""What the status server and the page are served from: a source (the running daemon, or a
published database), its settings, the app's key for it, and what a request may get wrong."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from nsdi_tracker.service.health import Assessment
from nsdi_tracker.service.metrics import Metrics
from nsdi_tracker.service.snapshot import Snapshot
from nsdi_tracker.settings.config import Schedule
from nsdi_tracker.store.sqlite import ChangelogFilter, Store
from nsdi_tracker.ui.export import changelog_filter


@dataclass(frozen=True, slots=True)
class Served:
    """What the status server shows of its source's settings."""

    database: Path
    config: Path | None = None
    schedule: Schedule | None = None  # None: a published copy; nothing measures
    show_paths: bool = False
    base_path: str = ""


class StatusSource(Protocol):
    """What the status server needs of its source: the running daemon (service.daemon.Daemon)
    or a published database (service.publish.Publisher). Its settings, its clock, the round's
    snapshot, its health and database reads."""

    started: datetime
    snapshot: Snapshot | None
    clock: Callable[[], datetime]

    @property
    def served(self) -> Served: ...

    @property
    def metrics(self) -> Metrics | None: ...

    async def assess(self) -> tuple[Assessment, dict[str, Any] | None]: ...

    async def read(self, fn: Callable[[Store], Any]) -> Any: ...

    def next_round(self) -> datetime | None: ...


DAEMON: web.AppKey[StatusSource] = web.AppKey("daemon")


class BadRequest(Exception):
    """A parameter the request got wrong: 400, naming it."""


def read_filter(request: web.Request, given: dict[str, str]) -> ChangelogFilter:
    """The change log's filters (since, until, domain, resolver, type), as text; empty
    values are no filter. BadRequest names the one that is wrong."""
    try:
        return changelog_filter(
            request.app[DAEMON].clock(), **{k: v for k, v in given.items() if v}
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


_DIGITS = re.compile(r"[0-9]{1,19}")


def query_int(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from `low` to `high` (absent or empty: `default`);
    BadRequest names it otherwise."""
    text = request.query.get(key)
    if not text:
        return default
    # ASCII digits only, and few: str.isdigit() also takes '²' and '①', which int() refuses,
    # and int() refuses a string of thousands of digits.
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise BadRequest(f"{key}: {text!r} must be a whole number from {low} to {high}")
    return int(text)
