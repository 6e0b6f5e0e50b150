"""Is the tracker healthy? One rule for /healthz and `nsdi-tracker health`.

Healthy means it is producing measurements one can trust: a round that measured (status ok or
partial) ended within two intervals, and the database takes writes. A tracker whose rounds
keep ending offline or cut off is running but blind, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import RoundStatus

_WHY: dict[str, str] = {
    RoundStatus.OFFLINE: "no reference resolver passed its controls (is our own network down?)",
    RoundStatus.TIMEOUT: "it overran round_timeout and was cut off",
}


@dataclass(frozen=True, slots=True)
class Assessment:
    healthy: bool
    reason: str

    def json(self, last: Mapping[str, Any] | None) -> dict[str, Any]:
        brief = None
        if last is not None:
            brief = {k: last.get(k) for k in ("id", "status", "started", "finished", "domains")}
        return {"status": "ok" if self.healthy else "failing", "reason": self.reason,
                "last_round": brief}  # fmt: skip


def assess(
    last: Mapping[str, Any] | None,
    last_measured: Mapping[str, Any] | None,
    interval: float,
    now: datetime,
    db_problem: str | None = None,
) -> Assessment:
    """`last` is the latest round, `last_measured` the latest with status ok or partial."""
    if db_problem:
        return Assessment(False, f"database: {db_problem}")
    if last is None:
        return Assessment(False, "no round has finished yet")
    window = 2 * interval
    age = (now - parse_iso(last["finished"])).total_seconds()
    if age > window:
        return Assessment(
            False,
            f"the last round ended {_ago(age)} ago; rounds are due every {_ago(interval)}",
        )
    if last_measured is None or (now - parse_iso(last_measured["finished"])).total_seconds() > (
        window
    ):
        why = _WHY.get(str(last["status"]), str(last["status"]))
        return Assessment(
            False, f"no round has measured in {_ago(window)}: the last one ended {why}"
        )
    return Assessment(True, f"last round {last['status']}, ended {_ago(age)} ago")


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
