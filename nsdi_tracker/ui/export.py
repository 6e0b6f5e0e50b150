"""The change log as CSV (RFC 4180, UTF-8), JSON or NDJSON, streamed row by row.

The CSV columns are `store.CHANGELOG_COLUMNS`, in that order, and stay stable: new columns are
only ever added at the end. List columns (flags, addresses) are space-separated in CSV and
arrays in JSON.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from nsdi_tracker.core.errors import InvalidName
from nsdi_tracker.core.model import EventType
from nsdi_tracker.core.names import normalize
from nsdi_tracker.store.sqlite import CHANGELOG_COLUMNS, LIST_COLUMNS, ChangelogFilter

FORMATS = ("csv", "json", "ndjson")
_RELATIVE = re.compile(r"([0-9]{1,12})([smhdw])")  # ASCII digits only
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime) -> datetime:
    """An ISO date or date-time (UTC unless it says otherwise), or an age such as 7d or 12h;
    in UTC. ValueError for anything else, including a moment outside the years 1 to 9999."""
    text = text.strip()
    try:
        match = _RELATIVE.fullmatch(text)
        if match:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range (years 1 to 9999)") from None
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 2026-02-10, 2026-02-10T12:00Z or an age like 7d, 12h"
        ) from None


def changelog_filter(
    now: datetime,
    *,
    since: str | None = None,
    until: str | None = None,
    domain: str | None = None,
    resolver: str | None = None,
    type: str | None = None,
) -> ChangelogFilter:
    """The export filters, as `export` and /api/transitions take them; ValueError names the
    offending one."""
    when: dict[str, datetime | None] = {}
    for key, text in (("since", since), ("until", until)):
        try:
            when[key] = parse_when(text, now) if text else None
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    types = tuple(t.strip() for t in type.split(",") if t.strip()) if type else ()
    for t in types:
        if t not in set(EventType):
            raise ValueError(f"type: {t!r} is not one of {', '.join(EventType)}")
    try:
        name = normalize(domain) if domain else None
    except InvalidName as exc:
        raise ValueError(f"domain: {exc}") from None
    return ChangelogFilter(
        since=when["since"], until=when["until"], domain=name, scope=resolver, types=types
    )


def csv_row(row: Mapping[str, Any]) -> list[str]:
    out = []
    for column in CHANGELOG_COLUMNS:
        value = row.get(column)
        if column in LIST_COLUMNS:
            value = " ".join(value or ())
        out.append("" if value is None else str(value))
    return out


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in CHANGELOG_COLUMNS}
    event = row.get("event")
    if isinstance(event, dict):
        out["evidence"] = event.get("evidence")
    return out


def write_csv(lines: Iterable[str], out: TextIO) -> int:
    """CSV lines (Store.changelog_csv) under the header row; returns how many rows."""
    out.write(",".join(CHANGELOG_COLUMNS) + "\r\n")  # plain names: nothing to quote
    n = 0
    rows = iter(lines)
    while batch := list(itertools.islice(rows, 5_000)):
        out.write("".join(batch))
        n += len(batch)
    return n


def write(rows: Iterable[Mapping[str, Any]], out: TextIO, fmt: str) -> int:
    """Write every row as JSON or NDJSON; returns how many. Never holds more than one row."""
    n = 0
    if fmt == "ndjson":
        for row in rows:
            out.write(json.dumps(json_row(row), ensure_ascii=False) + "\n")
            n += 1
        return n

    def counted() -> Iterator[Mapping[str, Any]]:
        nonlocal n
        for row in rows:
            n += 1
            yield row

    for chunk in json_chunks(counted()):
        out.write(chunk)
    return n


def json_chunks(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The rows as one JSON array, a row per line, in pieces (for a file or a stream)."""
    first = True
    yield "["
    for row in rows:
        yield ("\n" if first else ",\n") + json.dumps(json_row(row), ensure_ascii=False)
        first = False
    yield "]\n" if first else "\n]\n"
