"""The daemon's Prometheus metrics: what it counts, and the verdict gauges read at scrape time.

Names follow the Prometheus conventions: an `nsdi_tracker_` prefix, units in the name, `_total`
on counters. Counters start from zero when the daemon starts, as Prometheus expects; the
verdict gauges and the last-round times are loaded from the database, so a restart does not
blank a dashboard.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from nsdi_tracker import __version__
from nsdi_tracker.core.model import MEASURED, RoundStatus, Verdict
from nsdi_tracker.dns.latency import LATENCY_EDGES_MS
from nsdi_tracker.rounds.tracker import RoundDone

# Above this many watched domains, per-domain verdict series are kept only for the names
# whose verdict is neither `present` nor `absent` (NXDOMAIN everywhere), so that a
# million-name sweep does not flood Prometheus.
DOMAIN_SERIES_LIMIT = 10_000
_ROUND_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class VerdictCollector(Collector):
    """The confirmed verdicts of the watched domains, as the database has them after the last
    round: counts by headline verdict, and a series per (domain, scope). The daemon loads
    them with two queries after every round (no mirror of every track in memory, which a
    million-name watchlist could not afford)."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}  # watched domains by headline verdict
        self.series: list[tuple[str, str, str]] = []  # (domain, scope, verdict)
        self.up: dict[str, bool] = {}  # each resolver's confirmed health; `national` too

    def load(
        self,
        totals: Mapping[str | None, int],
        series: Iterable[tuple[str, str, str]],
        up: Mapping[str, bool] | None = None,
    ) -> None:
        self.totals = {v: n for v, n in totals.items() if v is not None}
        self.series = list(series)
        if up is not None:
            self.up = dict(up)

    def collect(self) -> Iterator[Metric]:
        per = GaugeMetricFamily(
            "nsdi_tracker_verdict",
            "Confirmed verdict of a watched domain per scope (national = the headline, else a "
            "resolver): 1 on the series whose verdict label is the current verdict",
            labels=["domain", "scope", "verdict"],
        )
        for domain, scope, verdict in self.series:
            per.add_metric([domain, scope, verdict], 1)
        totals = GaugeMetricFamily(
            "nsdi_tracker_domains",
            "Watched domains by confirmed national (headline) verdict",
            labels=["verdict"],
        )
        for verdict in Verdict:
            if verdict is not Verdict.UNKNOWN:
                totals.add_metric([verdict.value], self.totals.get(verdict.value, 0))
        up = GaugeMetricFamily(
            "nsdi_tracker_resolver_up",
            "1 while a resolver's confirmed health is up, 0 while it is down (it failed its "
            "controls for `confirm` rounds: the verdicts of its scope are held from before); "
            "resolver=national: some national resolver is up",
            labels=["resolver"],
        )
        for name, ok in sorted(self.up.items()):
            up.add_metric([name], 1 if ok else 0)
        yield per
        yield totals
        yield up


class LatencyCollector(Collector):
    """Time to the final reply per resolver, from the histograms each round keeps anyway
    (over LATENCY_EDGES_MS): a million replies a round are not observed one by one."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}  # ms

    def add(self, resolver: str, counts: Sequence[int], sum_ms: float) -> None:
        have = self.counts.setdefault(resolver, [0] * len(counts))
        for i, n in enumerate(counts):
            have[i] += n
        self.sums[resolver] = self.sums.get(resolver, 0.0) + sum_ms

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "nsdi_tracker_query_latency_seconds",
            "Time to the final reply, by resolver",
            labels=["resolver"],
        )
        edges = [str(ms / 1000) for ms in LATENCY_EDGES_MS] + ["+Inf"]
        for name, counts in sorted(self.counts.items()):
            cumulative = list(itertools.accumulate(counts))
            family.add_metric(
                [name], list(zip(edges, cumulative, strict=True)), self.sums[name] / 1000
            )
        yield family


class Metrics:
    """Every metric of one daemon, in its own registry."""

    def __init__(self) -> None:
        """Long because it is a list: one declaration (name, help text, labels, buckets) per
        metric, which reads best in one place, in the order /metrics shows them."""
        r = self.registry = CollectorRegistry()
        Info("nsdi_tracker_build", "The running version", registry=r).info({"version": __version__})
        self.rounds = Counter(
            "nsdi_tracker_rounds",
            "Rounds by how they ended: ok, partial (a resolver failed its controls), offline "
            "(no reference passed: our own connectivity is in doubt), timeout (cut off)",
            ["status"],
            registry=r,
        )
        self.round_duration = Histogram(
            "nsdi_tracker_round_duration_seconds",
            "Wall time of a round, measuring and recording",
            buckets=_ROUND_BUCKETS,
            registry=r,
        )
        self.queries = Counter(
            "nsdi_tracker_queries",
            "Questions asked, by resolver and the outcome of the final reply",
            ["resolver", "outcome"],
            registry=r,
        )
        self.exchanges = Counter(
            "nsdi_tracker_exchanges",
            "Exchanges sent, retries and TCP fallbacks included, by resolver",
            ["resolver"],
            registry=r,
        )
        self.latency = LatencyCollector()
        r.register(self.latency)
        self.controls = Gauge(
            "nsdi_tracker_resolver_controls_passed",
            "1 if the resolver passed its controls in the last round",
            ["resolver"],
            registry=r,
        )
        self.transitions = Counter(
            "nsdi_tracker_transitions",
            "Confirmed transitions by event type and scope",
            ["type", "scope"],
            registry=r,
        )
        self.deliveries = Counter(
            "nsdi_tracker_deliveries",
            "Delivery attempts by sink and result (delivered, retry, failed = given up)",
            ["sink", "result"],
            registry=r,
        )
        self.backlog = Gauge(
            "nsdi_tracker_deliveries_backlog",
            "Deliveries in the database that are pending or have failed for good",
            ["status"],
            registry=r,
        )
        self.last_round = Gauge(
            "nsdi_tracker_last_round_timestamp_seconds",
            "When the last round ended, whatever its status (Unix time)",
            registry=r,
        )
        self.last_measured = Gauge(
            "nsdi_tracker_last_measured_round_timestamp_seconds",
            "When the last round that measured (ok or partial) ended (Unix time)",
            registry=r,
        )
        self.scheduler = Counter(
            "nsdi_tracker_scheduler_events",
            "Scheduler trouble: error (a round raised), missed (started too late), "
            "skipped (the previous round was still running)",
            ["event"],
            registry=r,
        )
        self.reloads = Counter(
            "nsdi_tracker_config_reloads", "Config reloads by result", ["result"], registry=r
        )
        self.reload_ok = Gauge(
            "nsdi_tracker_config_last_reload_successful",
            "1 if the last config reload was applied, 0 if it was rejected",
            registry=r,
        )
        self.reload_ok.set(1)
        self.watched = Gauge(
            "nsdi_tracker_watched_domains", "Domains on the watchlists", registry=r
        )
        self.verdicts = VerdictCollector()
        r.register(self.verdicts)

    def watch(self, count: int) -> None:
        self.watched.set(count)

    def round_done(self, done: RoundDone, seconds: float) -> None:
        r = done.record
        self.rounds.labels(r.status).inc()
        self.round_duration.observe(seconds)
        self.last_round.set(r.finished.timestamp())
        if r.status in MEASURED:
            self.last_measured.set(r.finished.timestamp())
        info = done.info
        for name, counters in info.counters.items():
            self.exchanges.labels(name).inc(counters.queries)
            for outcome, n in counters.by_outcome.items():
                self.queries.labels(name, str(outcome)).inc(n)
            self.latency.add(name, info.latency[name], counters.latency_sum_ms)
        for name, health in info.health.items():
            self.controls.labels(name).set(1 if health.controls_passed else 0)
        for (kind, scope), n in done.changes.by_type.items():
            self.transitions.labels(kind, scope).inc(n)

    def round_timed_out(self, finished: datetime, seconds: float) -> None:
        self.rounds.labels(RoundStatus.TIMEOUT).inc()
        self.round_duration.observe(seconds)
        self.last_round.set(finished.timestamp())

    def delivery(self, sink: str, result: str) -> None:
        self.deliveries.labels(sink, result).inc()

    def set_backlog(self, backlog: Mapping[str, int]) -> None:
        for status in ("pending", "failed"):
            self.backlog.labels(status).set(backlog.get(status, 0))

    def reloaded(self, ok: bool) -> None:
        self.reloads.labels("applied" if ok else "rejected").inc()
        self.reload_ok.set(1 if ok else 0)
