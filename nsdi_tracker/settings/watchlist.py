"""Watchlists: TOML with labels, plain text, or Tranco-style CSV, normalised and merged."""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, overload

from nsdi_tracker.core.errors import InvalidName, WatchlistError
from nsdi_tracker.core.model import new_record
from nsdi_tracker.core.names import normalize

_ENTRY_KEYS = {"domain", "label", "category", "note", "source"}


class Entry(NamedTuple):
    """One watched name and what a reader needs to know about it."""

    domain: str
    label: str | None = None
    category: str | None = None
    note: str | None = None
    source: str | None = None


class Watchlist(Sequence[Entry]):
    """Merged entries, in order, kept compact: a name per entry, and the label, category,
    note and source only where an entry has one. A million-name list is mostly bare names,
    and its entries are made as they are read (a tuple each), not kept."""

    __slots__ = ("_extra", "_names")

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        """Merge duplicates, keeping the first entry's place and filling in fields it
        lacks from later ones."""
        self._names: list[str] = []
        self._extra: dict[int, tuple[str | None, ...]] = {}
        where: dict[str, int] = {}  # only while merging
        for e in entries:
            i = where.get(e.domain)
            if i is None:
                where[e.domain] = len(self._names)
                self._names.append(e.domain)
                if e[1:] != _BARE:
                    self._extra[len(self._names) - 1] = e[1:]
            elif e[1:] != _BARE:
                old = self._extra.get(i, _BARE)
                self._extra[i] = tuple(a or b for a, b in zip(old, e[1:], strict=True))

    def __len__(self) -> int:
        return len(self._names)

    @property
    def domains(self) -> list[str]:
        """Every entry's name, in order (the list itself: not to be changed)."""
        return self._names

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]  # IndexError, negative indices
        return new_record(Entry, (self._names[i], *self._extra.get(i, _BARE)))  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Entry]:
        extra = self._extra
        new = new_record
        for i, name in enumerate(self._names):
            yield new(Entry, (name, *extra[i]) if i in extra else (name, None, None, None, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Watchlist):
            return self._names == other._names and self._extra == other._extra
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)  # the same entries in the same order
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_BARE: tuple[str | None, ...] = (None, None, None, None)


def load_watchlist(path: Path) -> list[Entry]:
    """Read one watchlist, duplicates and all; the suffix picks the format (.toml, .csv,
    anything else text)."""
    return list(read_watchlist(path))


def read_watchlist(path: Path) -> Iterator[Entry]:
    """The entries of one watchlist as they are read (text and CSV a line at a time)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            suffix = path.suffix.lower()
            if suffix == ".toml":
                yield from _from_toml(f.read(), path)
            elif suffix == ".csv":
                yield from _from_csv(f, path)
            else:
                yield from _from_text(f, path)
    except OSError as exc:
        raise WatchlistError(f"{path}: cannot read watchlist: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WatchlistError(f"{path}: not UTF-8 text") from None


def load_watchlists(paths: Iterable[Path]) -> Watchlist:
    return Watchlist(e for p in paths for e in read_watchlist(p))


def from_names(names: Iterable[str], origin: str = "command line") -> Watchlist:
    entries = []
    for i, name in enumerate(names, 1):
        try:
            entries.append(Entry(domain=normalize(name)))
        except InvalidName as exc:
            raise WatchlistError(f"{origin}: argument {i}: {exc}") from None
    return merge(entries)


def merge(entries: Iterable[Entry]) -> Watchlist:
    """Merge duplicates, keeping the first entry's order and filling in fields it lacks."""
    return Watchlist(entries)


def _from_text(lines: Iterable[str], path: Path) -> Iterator[Entry]:
    for lineno, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if name:
            yield new_record(Entry, (_normalize(name, path, lineno), None, None, None, None))


def _from_csv(lines: Iterable[str], path: Path) -> Iterator[Entry]:
    """`rank,domain` (Tranco, Umbrella) or a single `domain` column; a header row is skipped."""
    for lineno, row in enumerate(csv.reader(lines), 1):
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
        try:
            name = normalize(domain)
        except InvalidName as exc:  # only now look for its line: a scan of the whole text
            line = _line_of(text, domain)
            place = f"{path}:{line}" if line else where
            raise WatchlistError(f"{place}: invalid domain: {exc}") from None
        yield Entry(
            domain=name,
            label=item.get("label"),
            category=item.get("category"),
            note=item.get("note"),
            source=item.get("source"),
        )


def _normalize(name: str, path: Path, lineno: int) -> str:
    try:
        return normalize(name)
    except InvalidName as exc:
        place = f"{path}:{lineno}"
        raise WatchlistError(f"{place}: invalid domain: {exc}") from None


def _line_of(text: str, value: str) -> int | None:
    """The line on which `domain = "value"` stands (tomllib gives no positions)."""
    pattern = re.compile(r"""^\s*domain\s*=\s*["']""" + re.escape(value) + r"""["']""")
    for lineno, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return lineno
    return None
