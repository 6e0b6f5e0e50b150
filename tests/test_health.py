"""The health rule shared by /healthz and `nsdi-tracker health`, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nsdi_tracker.core.clock import iso
from nsdi_tracker.service.health import assess

NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)


def rnd(status: str, seconds_ago: float) -> dict[str, Any]:
    return {"id": 1, "status": status, "finished": iso(NOW - timedelta(seconds=seconds_ago))}


@pytest.mark.parametrize(
    ("last", "measured", "problem", "healthy", "reason"),
    [
        (rnd("ok", 10), rnd("ok", 10), None, True, "last round ok, ended 10 s ago"),
        (rnd("partial", 599), rnd("partial", 599), None, True, "last round partial"),
        (None, None, None, False, "no round has finished yet"),
        (rnd("ok", 601), rnd("ok", 601), None, False, "the last round ended 10 min ago"),
        (rnd("offline", 5), rnd("ok", 700), None, False, "our own network"),
        (rnd("timeout", 5), None, None, False, "round_timeout"),
        (rnd("timeout", 5), rnd("ok", 400), None, True, "last round timeout"),
        (rnd("ok", 5), rnd("ok", 5), "x is not writable", False, "database: x is not writable"),
    ],
)
def test_assess(last: Any, measured: Any, problem: str | None, healthy: bool, reason: str) -> None:
    """Healthy only if a round that measured ended within two intervals (300 s here) and the
    database is writable; the reason says which part failed."""
    verdict = assess(last, measured, 300, NOW, problem)
    assert verdict.healthy is healthy
    assert reason in verdict.reason
    doc = verdict.json(last)
    assert doc["status"] == ("ok" if healthy else "failing")
    assert doc["last_round"] == (None if last is None else {**last, "started": None,
                                                            "domains": None})  # fmt: skip
