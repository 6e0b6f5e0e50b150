"""The verdict gauges: one series per watched domain and scope, thinned for huge watchlists."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nsdi_tracker.service import metrics
from nsdi_tracker.store.sqlite import Store


def samples(m: metrics.Metrics, name: str) -> dict[tuple[str, ...], float]:
    text = generate_latest(m.registry).decode()
    family = next(f for f in text_string_to_metric_families(text) if f.name == name)
    return {tuple(s.labels.values()): s.value for s in family.samples}


def seed(path: Path) -> None:
    """Seven watched names (one removed, one tampered, one absent, one without a verdict
    yet) and one no longer watched."""
    with Store.open(path) as store, store.db.atomic():
        db = store.db
        db.execute(
            "INSERT INTO rounds VALUES (1, 'a', 'b', 'ok', 5, 20, 0, '{}', '{}', 'x', NULL, NULL)"
        )
        rows = [
            (1, "a.ru", 1, "present"), (2, "b.ru", 1, "removed"), (3, "c.ru", 1, None),
            (4, "d.ru", 1, "present"), (5, "e.ru", 1, "present"), (6, "gone.ru", 0, "removed"),
            (7, "nx.ru", 1, "absent"), (8, "f.ru", 1, "tampered"),
        ]  # fmt: skip
        db.conn.executemany(
            "INSERT INTO domains (id, name, watched, first_seen) VALUES (?, ?, ?, 'x')",
            [(i, n, w) for i, n, w, _ in rows],
        )
        db.conn.executemany(
            "INSERT INTO states (domain_id, scope, verdict, round_id) VALUES (?, ?, ?, 1)",
            [(i, scope, v) for i, _, _, v in rows for scope in ("national", "nsdi-a")],
        )


def loaded(path: Path, *, thin: bool) -> metrics.Metrics:
    m = metrics.Metrics()
    with Store.open_readonly(path) as store:
        m.verdicts.load(
            store.headline_totals(), store.verdict_series(thin=thin), store.resolver_up()
        )
    return m


def test_resolver_up_per_resolver(tmp_path: Path) -> None:
    """One nsdi_tracker_resolver_up series per resolver with a confirmed health (national
    too): 0 while it is down, 1 while up; none before its health is confirmed."""
    seed(tmp_path / "m.db")
    with Store.open(tmp_path / "m.db") as store, store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO resolver_states (scope, state, candidate, round_id) VALUES (?, ?, ?, 1)",
            [("nsdi-a", "up", None), ("nsdi-b", "down", None), ("national", "up", None),
             ("ref", None, "up")],
        )  # fmt: skip
    m = loaded(tmp_path / "m.db", thin=False)
    assert samples(m, "nsdi_tracker_resolver_up") == {
        ("national",): 1, ("nsdi-a",): 1, ("nsdi-b",): 0,
    }  # fmt: skip


def test_verdict_series_of_the_watched_names(tmp_path: Path) -> None:
    """A series per confirmed (domain, scope) of a watched name; counts by headline."""
    seed(tmp_path / "m.db")
    m = loaded(tmp_path / "m.db", thin=False)
    series = samples(m, "nsdi_tracker_verdict")
    assert len(series) == 12 and series[("b.ru", "nsdi-a", "removed")] == 1
    assert series[("nx.ru", "national", "absent")] == 1
    assert not any(k[0] in ("c.ru", "gone.ru") for k in series)  # no verdict; not watched
    counts = samples(m, "nsdi_tracker_domains")
    assert counts[("present",)] == 3 and counts[("removed",)] == 1 and counts[("absent",)] == 1


def test_huge_watchlists_keep_only_the_interesting_series(tmp_path: Path) -> None:
    """Thinned (above DOMAIN_SERIES_LIMIT watched names), present and absent names lose
    their per-domain series; the counts keep them."""
    seed(tmp_path / "m.db")
    m = loaded(tmp_path / "m.db", thin=True)
    assert samples(m, "nsdi_tracker_verdict") == {
        ("b.ru", "national", "removed"): 1,
        ("b.ru", "nsdi-a", "removed"): 1,
        ("f.ru", "national", "tampered"): 1,
        ("f.ru", "nsdi-a", "tampered"): 1,
    }
    counts = samples(m, "nsdi_tracker_domains")
    assert counts[("present",)] == 3 and counts[("absent",)] == 1
