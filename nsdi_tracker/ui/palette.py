"""How each verdict looks, in one table: its colour, its word in a narrow cell, its glyph in a
history strip, its place in the headline order and its colour on the web page. Every view
(the round table, `status`, `history`, the dashboard, the page) draws from here, and a
verdict added to the vocabulary fails the architecture test until it has a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from nsdi_tracker.core.model import ResolverState, RoundStatus, Verdict


@dataclass(frozen=True, slots=True)
class Look:
    style: str  # a rich style
    short: str  # the word where a cell is narrow
    block: str  # the history strip's glyph: heights tell verdicts apart without colour too
    rank: int  # the headline order: what a reader must see first comes first
    color: str  # the web page's colour for the same verdict (CSS)


PALETTE: Final[Mapping[Verdict, Look]] = {
    Verdict.REMOVED: Look("bold red", "REMOVED", "█", 0, "#c62828"),
    Verdict.TAMPERED: Look("bold magenta", "TAMPER", "▆", 1, "#8e24aa"),
    Verdict.PARTIAL: Look("bold dark_orange", "PARTIAL", "▅", 2, "#e65100"),
    Verdict.UNREACHABLE: Look("yellow", "unreach", "▒", 3, "#f9a825"),
    Verdict.DIFFERS: Look("cyan", "differs", "▃", 4, "#00838f"),
    Verdict.ABSENT: Look("dim", "absent", "_", 5, "#9e9e9e"),
    Verdict.UNKNOWN: Look("dim", "?", "?", 6, "#bdbdbd"),
    Verdict.PRESENT: Look("green", "ok", "▂", 7, "#2e7d32"),
}
STATES: Final[Mapping[ResolverState, str]] = {
    ResolverState.UP: "green",
    ResolverState.DOWN: "bold red",
}
ROUNDS: Final[Mapping[RoundStatus, str]] = {
    RoundStatus.OK: "green",
    RoundStatus.PARTIAL: "yellow",
    RoundStatus.OFFLINE: "bold red",
    RoundStatus.TIMEOUT: "bold red",
}
UNRANKED = len(PALETTE)  # the place of a name with no verdict yet: last


def rank(verdict: Verdict | None) -> int:
    return PALETTE[verdict].rank if verdict is not None else UNRANKED


def headline_order() -> list[Verdict]:
    return sorted(PALETTE, key=rank)


def style_of(verdict: str | None) -> str:
    """The style of a verdict (or a resolver's up/down) given as text; dim for none (or a
    "new" name)."""
    if verdict is not None and verdict in STATES:
        return STATES[ResolverState(verdict)]
    try:
        return PALETTE[Verdict(verdict)].style if verdict else "dim"
    except ValueError:  # "new": no verdict confirmed yet
        return "dim"
