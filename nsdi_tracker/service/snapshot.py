"""What the status server answers from, so that HTTP load never delays a round.

The rounds and the status server share one event loop, so every CPU-millisecond a request
costs there is taken from the measurement. Under 32 busy clients the server used to build
/api/status (2,000 names, 60 ms of Python) per request, and every round was cut off. Now:

- `Snapshot`: what changes only when a round ends: the last rounds for /healthz, read on the
  database thread right after the commit, and the status of every watched name as JSON
  bytes, read once per round when first asked for. A request only joins bytes, and a client
  holding the current ETag gets 304.
- `Readers`: the reads that depend on the request (a page of the change log, one domain) run
  on two worker threads with read-only connections opened once and kept. At most two run at
  a time; the rest wait their turn without costing the loop anything.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from nsdi_tracker.core.model import MEASURED
from nsdi_tracker.store.sqlite import Store
from nsdi_tracker.ui.views import status_json

T = TypeVar("T")
Reader = Callable[[Callable[[Store], bytes]], Awaitable[bytes]]  # Daemon.read, say


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int  # one more each time it is built
    last: dict[str, Any] | None = None  # the last round, and the last that measured
    measured: dict[str, Any] | None = None
    # /api/status as JSON (key: with unwatched names too), built when first asked for: a
    # sweep of a million names pays for it only if someone looks.
    bodies: dict[bool, bytes] = field(default_factory=dict)
    building: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def body(
        self, everything: bool, read: Callable[[Callable[[Store], bytes]], Any]
    ) -> bytes:
        """The status JSON of this round, read once (through `read`) whoever asks first."""
        if everything not in self.bodies:
            async with self.building:
                if everything not in self.bodies:
                    self.bodies[everything] = await read(
                        functools.partial(status_body, include_unwatched=everything)
                    )
        return self.bodies[everything]


def build(store: Store, generation: int) -> Snapshot:
    """What /healthz needs until the next round (blocking, two small reads)."""
    return Snapshot(generation, store.last_round(), store.last_round(MEASURED))


def status_body(store: Store, *, include_unwatched: bool) -> bytes:
    """/api/status's part that changes only with a round (blocking)."""
    rows = store.status(include_unwatched=include_unwatched)
    return orjson.dumps(
        status_json(rows, store.last_round(), store.backlog(), store.resolver_status())
    )


def joined(head: dict[str, Any], body: bytes) -> bytes:
    """One JSON object: `head`'s keys, then those of the encoded object `body`."""
    first = orjson.dumps(head)
    if body == b"{}":
        return first
    return first[:-1] + b"," + body[1:] if len(first) > 2 else body


class Readers:
    """Read-only connections on `threads` worker threads, each opened on first use and kept."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="reader")
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[Store], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[Store], T]) -> T:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = Store.open_readonly(self.path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return fn(store)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()
