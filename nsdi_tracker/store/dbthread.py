"""Blocking database calls, one at a time, off the event loop.

SQLite calls block. A round's commit at watchlist scale takes milliseconds, but for a large
sweep it takes seconds, and the daemon must keep answering /healthz and sending events while
it runs. Every Store call the daemon makes goes through one worker thread, so calls never
overlap on the connection and their order is the order they were made in.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class DbThread:
    """Runs Store calls on one dedicated thread, or inline (for one-shot commands and tests)."""

    def __init__(self, *, inline: bool = False) -> None:
        self._pool = None if inline else ThreadPoolExecutor(1, thread_name_prefix="database")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Wait for the call under way (a commit is never abandoned half-way), then stop."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


INLINE = DbThread(inline=True)
