"""The verdict gauges: one series per watched domain and scope, thinned for huge watchlists."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nsdi_tracker import metrics
from nsdi_tracker.confirm import Track
from nsdi_tracker.model import Verdict


def samples(m: metrics.Metrics, name: str) -> dict[tuple[str, ...], float]:
    text = generate_latest(m.registry).decode()
    family = next(f for f in text_string_to_metric_families(text) if f.name == name)
    return {tuple(s.labels.values()): s.value for s in family.samples}


def test_verdict_series_follow_the_watchlist_and_updates() -> None:
    """Only watched names have series; an update moves the series to the new verdict."""
    m = metrics.Metrics()
    m.verdicts.load({
        ("a.ru", "national"): Track(Verdict.PRESENT),
        ("b.ru", "national"): Track(Verdict.REMOVED),
        ("gone.ru", "national"): Track(Verdict.REMOVED),
        ("c.ru", "national"): Track(None),  # no confirmed verdict yet: no series
    })  # fmt: skip
    m.watch(["a.ru", "b.ru", "c.ru"])
    assert samples(m, "nsdi_tracker_verdict") == {
        ("a.ru", "national", "present"): 1,
        ("b.ru", "national", "removed"): 1,
    }
    m.verdicts.update({("a.ru", "national"): Track(Verdict.REMOVED)})
    assert samples(m, "nsdi_tracker_verdict")[("a.ru", "national", "removed")] == 1
    counts = samples(m, "nsdi_tracker_domains")
    assert counts[("removed",)] == 2 and counts[("present",)] == 0


def test_huge_watchlists_keep_only_the_interesting_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above DOMAIN_SERIES_LIMIT watched names, present names lose their per-domain series
    (the counts keep them); everything else is still there."""
    monkeypatch.setattr(metrics, "DOMAIN_SERIES_LIMIT", 3)
    m = metrics.Metrics()
    names = [f"n{i}.ru" for i in range(5)]
    m.verdicts.load({(n, "national"): Track(Verdict.PRESENT) for n in names})
    m.verdicts.update({("n4.ru", "national"): Track(Verdict.REMOVED)})
    m.watch(names)
    assert samples(m, "nsdi_tracker_verdict") == {("n4.ru", "national", "removed"): 1}
    assert samples(m, "nsdi_tracker_domains")[("present",)] == 4
