"""What the rest of the tracker needs of a store, as protocols: a second backend (PostgreSQL for a
fleet's collector, say) implements these beside `store.sqlite`, and no SQL lives elsewhere.

The round's runner writes through RoundStore, the outbox works through DeliveryQueue, and
people read through ReadModel; each is typed against its protocol, not the SQLite class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.store.records import (
    BatchPlan,
    ChangelogFilter,
    Delivery,
    HealthPlan,
    ObsKey,
    RoundRecord,
    StoredTrack,
    TrackKey,
)


class RoundStore(Protocol):
    """A round's writes: look-ups for the planner, staged batches, one commit."""

    path: Path

    def guard(self, *, reconnect: bool = False) -> list[str]: ...
    def prune_due(self, now: datetime) -> bool: ...

    def lookup(
        self, domains: Sequence[str]
    ) -> tuple[dict[TrackKey, StoredTrack], dict[ObsKey, str]]: ...

    def lookup_health(self) -> dict[str, StoredTrack]: ...

    def digests(self) -> Iterator[tuple[str, int | None]]: ...

    def begin_round(self) -> int: ...

    def stage(self, plan: BatchPlan) -> None: ...

    def commit_round(
        self,
        round_id: int,
        record: RoundRecord,
        resolvers: Sequence[ResolverSpec],
        health: HealthPlan | None = None,
        summary_sink: str | None = None,
        gone: Sequence[str] = (),
    ) -> None: ...

    def record_timeout(
        self,
        started: datetime,
        finished: datetime,
        *,
        domains: int,
        queries: int,
        interval: float | None = None,
    ) -> int: ...

    def prune(self, before: datetime) -> int: ...


class DeliveryQueue(Protocol):
    """The outbox's queue: due deliveries, and what became of each."""

    def due(self, now: datetime, sinks: Iterable[str], limit: int = 100) -> list[Delivery]: ...

    def next_due(self, sinks: Iterable[str]) -> datetime | None: ...

    def mark_delivered(self, delivery_id: int, at: datetime) -> None: ...

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None: ...

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None: ...

    def backlog(self) -> dict[str, int]: ...


class ReadModel(Protocol):
    """What `status`, `history`, the dashboard, the server and the metrics read."""

    path: Path

    def backlog(self) -> dict[str, int]: ...

    def last_round(self, statuses: Sequence[str] = ()) -> dict[str, Any] | None: ...

    def status(
        self,
        *,
        include_unwatched: bool = False,
        domain: str | None = None,
        domains: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]: ...

    def down_since(self) -> dict[str, str]: ...

    def resolver_up(self) -> dict[str, bool]: ...

    def resolver_status(self) -> list[dict[str, Any]]: ...

    def verdict_series(self, *, thin: bool) -> list[tuple[str, str, str]]: ...

    def headline_totals(self) -> dict[str | None, int]: ...

    def first_domains(self, limit: int, since_round: int, rank: Sequence[str]) -> list[str]: ...

    def read_transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def recent_rounds(self, n: int) -> list[dict[str, Any]]: ...

    def round_health_since(self, since: datetime) -> list[dict[str, Any]]: ...

    def national_changes_since(
        self, round_id: int, domains: Sequence[str] | None = None
    ) -> list[tuple[str, int, str | None, str]]: ...

    def recent_transitions(self, n: int) -> list[dict[str, Any]]: ...

    def history(self, domain: str) -> list[dict[str, Any]]: ...

    def changelog(
        self,
        flt: ChangelogFilter = ...,
        *,
        with_event: bool = False,
        after: int = 0,
        before: int = 0,
        newest_first: bool = False,
        limit: int = -1,
    ) -> Iterator[dict[str, Any]]: ...

    def domain_page(
        self,
        rank: Sequence[str],
        *,
        verdicts: Sequence[str] = (),
        category: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[str]]: ...

    def categories(self) -> list[tuple[str, int]]: ...

    def domain_info(self, name: str) -> dict[str, Any] | None: ...

    def transition(self, event_id: str) -> dict[str, Any] | None: ...

    def round_gaps(self, since: str, fallback_interval: float) -> list[tuple[str, str]]: ...

    def round_health(self, limit: int) -> list[dict[str, Any]]: ...

    def has_domain(self, domain: str) -> bool: ...

    def has_scope(self, scope: str) -> bool: ...

    def changelog_csv(self, flt: ChangelogFilter = ...) -> Iterator[str]: ...
