"""Watchlists: TOML with labels, plain text, or Tranco-style CSV, normalised and merged."""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nsdi_tracker.errors import InvalidName, WatchlistError
from nsdi_tracker.names import normalize

_ENTRY_KEYS = {"domain", "label", "category", "note", "source"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One watched name and what a reader needs to know about it."""

    domain: str
    label: str | None = None
    category: str | None = None
    note: str | None = None
    source: str | None = None


def load_watchlist(path: Path) -> list[Entry]:
    """Read one watchlist; the suffix picks the format (.toml, .csv, anything else text)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise WatchlistError(f"{path}: cannot read watchlist: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WatchlistError(f"{path}: not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return list(_from_toml(text, path))
    if suffix == ".csv":
        return list(_from_csv(text, path))
    return list(_from_text(text, path))


def load_watchlists(paths: Iterable[Path]) -> list[Entry]:
    return merge(e for p in paths for e in load_watchlist(p))


def from_names(names: Iterable[str], origin: str = "command line") -> list[Entry]:
    entries = []
    for i, name in enumerate(names, 1):
        try:
            entries.append(Entry(domain=normalize(name)))
        except InvalidName as exc:
            raise WatchlistError(f"{origin}: argument {i}: {exc}") from None
    return merge(entries)


def merge(entries: Iterable[Entry]) -> list[Entry]:
    """Merge duplicates, keeping the first entry's order and filling in fields it lacks."""
    merged: dict[str, Entry] = {}
    for e in entries:
        old = merged.get(e.domain)
        if old is None:
            merged[e.domain] = e
        else:
            merged[e.domain] = Entry(
                domain=e.domain,
                label=old.label or e.label,
                category=old.category or e.category,
                note=old.note or e.note,
                source=old.source or e.source,
            )
    return list(merged.values())


def _from_text(text: str, path: Path) -> Iterator[Entry]:
    for lineno, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if name:
            yield Entry(domain=_normalize(name, path, lineno))


def _from_csv(text: str, path: Path) -> Iterator[Entry]:
    """`rank,domain` (Tranco, Umbrella) or a single `domain` column; a header row is skipped."""
    for lineno, row in enumerate(csv.reader(text.splitlines()), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) >= 2 and cells[0].isdigit():
            name = cells[1]
        elif len(cells) >= 2 or (lineno == 1 and cells[0].lower() in {"domain", "name", "rank"}):
            if lineno == 1:  # a header such as "rank,domain"
                continue
            raise WatchlistError(f"{path}:{lineno}: expected 'rank,domain' or one domain a line")
        else:
            name = cells[0]
        yield Entry(domain=_normalize(name, path, lineno))


def _from_toml(text: str, path: Path) -> Iterator[Entry]:
    """[[entry]] tables with domain, label, category and optional note and source."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WatchlistError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(data) - {"entry"}
    if unknown:
        raise WatchlistError(
            f"{path}: unknown top-level key {sorted(unknown)[0]!r} (use [[entry]])"
        )
    items = data.get("entry", [])
    if not isinstance(items, list):
        raise WatchlistError(f"{path}: 'entry' must be an array of tables ([[entry]])")
    for i, item in enumerate(items):
        where = f"{path}: entry {i + 1}"
        if not isinstance(item, dict):
            raise WatchlistError(f"{where}: must be a table")
        bad = set(item) - _ENTRY_KEYS
        if bad:
            raise WatchlistError(f"{where}: unknown key {sorted(bad)[0]!r}")
        domain = item.get("domain")
        if not isinstance(domain, str):
            raise WatchlistError(f"{where}: 'domain' is missing or not a string")
        for key in ("label", "category", "note", "source"):
            if key in item and not isinstance(item[key], str):
                raise WatchlistError(f"{where}: {key!r} must be a string")
        yield Entry(
            domain=_normalize(domain, path, _line_of(text, domain), where),
            label=item.get("label"),
            category=item.get("category"),
            note=item.get("note"),
            source=item.get("source"),
        )


def _normalize(name: str, path: Path, lineno: int | None, where: str | None = None) -> str:
    try:
        return normalize(name)
    except InvalidName as exc:
        place = f"{path}:{lineno}" if lineno else where or str(path)
        raise WatchlistError(f"{place}: invalid domain: {exc}") from None


def _line_of(text: str, value: str) -> int | None:
    """The line on which `domain = "value"` stands (tomllib gives no positions)."""
    pattern = re.compile(r"""^\s*domain\s*=\s*["']""" + re.escape(value) + r"""["']""")
    for lineno, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return lineno
    return None
