"""The clock, and time as the database and the event JSON write it. Pure, no I/O."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The default clock; tests inject their own."""
    return datetime.now(UTC)


@functools.lru_cache(maxsize=256)  # a round's batch stamps thousands of rows with one time
def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z: fixed width, so text order is time order."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
