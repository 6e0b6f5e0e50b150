"""What one frame of the dashboard shows, read from the store in one short read transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsdi_tracker.ui.palette import headline_order

if TYPE_CHECKING:
    from nsdi_tracker.store.protocols import ReadModel

Row = Mapping[str, Any]
STRIP_MAX = 24  # rounds of history per domain at wide sizes
RECENT = 8  # transitions listed


@dataclass(frozen=True, slots=True)
class Snapshot:
    database: str
    now: datetime
    interval: float | None  # from the config, for "next round"; None if unknown
    last_round: Row | None
    rounds: Sequence[Row]  # the last STRIP_MAX rounds, oldest first
    hour: Sequence[Row]  # rounds of the last hour with their health
    status: Sequence[Row]  # current_status rows of the watched domains
    changes: Sequence[tuple[str, int, str | None, str]]  # headline transitions in `rounds`
    transitions: Sequence[Row]  # recent, newest first
    backlog: Mapping[str, int]
    # Read for a screen (`limit`): `status` holds only the domains it can show, and these
    # count every watched domain by headline verdict (None: not yet). None: status is whole.
    totals: Mapping[str | None, int] | None = None
    resolver_states: Sequence[Row] = ()  # each resolver's confirmed up/down (resolver_status)

    def last_round_health(self) -> Mapping[str, Any]:
        if self.hour and self.last_round and self.hour[-1]["id"] == self.last_round["id"]:
            return self.hour[-1].get("health") or {}
        return {}


def read(
    path: Path, now: datetime, interval: float | None, screen: tuple[int, int] | None = None
) -> Snapshot:
    """A snapshot on a fresh read-only connection, closed at once: a dashboard never holds
    a read transaction (and so the writer's checkpoints) between frames. With a `screen`
    (width, height), only the domains that fit it are read."""
    from nsdi_tracker.store.sqlite import Store

    with Store.open_readonly(path) as store:
        return take(store, now, interval, screen)


def take(
    store: ReadModel, now: datetime, interval: float | None, screen: tuple[int, int] | None = None
) -> Snapshot:
    """Read a frame's worth from the store in one read transaction."""
    with store.read_transaction():  # one consistent view across the reads below
        rounds = store.recent_rounds(STRIP_MAX)
        first = rounds[0]["id"] if rounds else 0
        totals = names = None
        if screen is not None:
            width, height = screen
            strip = rounds[-strip_width(width) :]
            shown_from = strip[0]["id"] if strip else 0
            order = [str(v) for v in headline_order()]
            names = store.first_domains(max(height, 1), shown_from, order)
            totals = store.headline_totals()
        return Snapshot(
            database=str(store.path),
            now=now,
            interval=interval,
            last_round=rounds[-1] if rounds else None,
            rounds=rounds,
            hour=store.round_health_since(now - timedelta(hours=1)),
            status=store.status(domains=names),
            changes=store.national_changes_since(first, names) if rounds else [],
            transitions=store.recent_transitions(RECENT),
            backlog=store.backlog(),
            totals=totals,
            resolver_states=store.resolver_status(),
        )


def strip_width(width: int) -> int:
    return STRIP_MAX if width >= 120 else 12
