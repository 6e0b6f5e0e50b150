"""The fleet's collector: an aiohttp service that takes probes' submissions into PostgreSQL.

POST /api/v1/submissions, with the probe's name, a timestamp and an HMAC-SHA256 signature in
headers (core.signing), the body a version-1 submission (core.submission). Answers: 200
stored (or already stored: the same id again), 400 a body that is not a valid submission
(naming the field), 401 an unknown probe or a bad or stale signature, 409 a replayed request,
413 a body over `max_body`, 503 PostgreSQL unreachable (the probe keeps it and retries).
Nothing is half-written: a submission is one transaction. The collector keeps no state of
its own, so several can run against one PostgreSQL.

In the background it evaluates the fleet (`evaluate`: one collector at a time, each change
confirmed over evaluations, stored with its deliveries in one transaction) and sends the
fleet's events to its sinks with the probes' outbox over PostgreSQL's queue. The reads are
`fleet_api`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from nsdi_tracker import __version__
from nsdi_tracker.core import signing, submission
from nsdi_tracker.core.errors import StoreError
from nsdi_tracker.core.model import EventType
from nsdi_tracker.core.submission import RoundSummary
from nsdi_tracker.delivery.outbox import Outbox
from nsdi_tracker.judge.fleet import SCOPE
from nsdi_tracker.rounds.fleet import advance, fleet_event
from nsdi_tracker.service.fleet_api import FleetViews, error
from nsdi_tracker.service.server import serve_app
from nsdi_tracker.settings.collector import CollectorConfig
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.dbthread import DbThread
from nsdi_tracker.store.postgres.evaluation import FleetEvent
from nsdi_tracker.store.postgres.fleet import FleetStore, Replayed
from nsdi_tracker.store.postgres.queue import LEASE, FleetQueue

log = logging.getLogger("nsdi_tracker.collector")
SUBMISSIONS = "/api/v1/submissions"


class Collector:
    def __init__(
        self,
        config: CollectorConfig,
        store: FleetStore,
        clock: Callable[[], float] = time.time,
        *,
        lease: float = LEASE,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.lease = lease  # seconds a sink's sending stays this collector's without a word
        self.probe_ids: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.submissions = Counter(
            "nsdi_collector_submissions", "Submissions by probe and HTTP status answered",
            ["probe", "status"], registry=self.registry,
        )  # fmt: skip
        self.rows = Counter(
            "nsdi_collector_verdict_rows", "Domain verdict rows stored, by probe", ["probe"],
            registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge(
            "nsdi_collector_probe_lag_seconds",
            "Seconds since the end of each probe's latest stored round", ["probe"],
            registry=self.registry,
        )  # fmt: skip
        self.stale = Gauge(
            "nsdi_collector_probe_stale", "1 if the probe is stale (no round in "
            "stale_intervals of its interval)", ["probe"], registry=self.registry,
        )  # fmt: skip
        self.fleet_events = Counter(
            "nsdi_collector_fleet_events", "Fleet-level transitions confirmed, by type",
            ["type"], registry=self.registry,
        )  # fmt: skip
        self.deliveries = Counter(
            "nsdi_collector_deliveries", "Fleet event deliveries by sink and result",
            ["sink", "result"], registry=self.registry,
        )  # fmt: skip
        self.outbox: Outbox | None = None

    async def prepare(self) -> None:
        self.probe_ids = await self.store.register(p.row() for p in self.config.probes.values())

    async def forget_forever(self, every: float = 60.0) -> None:
        """Drop the signatures whose window has passed, every `every` seconds (several
        collectors doing it at once is harmless)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.store.forget_signatures(datetime.fromtimestamp(self.clock(), UTC))
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("signatures not swept: %s", type(exc).__name__)

    async def evaluate(self) -> list[dict[str, Any]] | None:
        """One evaluation of the fleet: every name's fleet verdict from every fresh probe's
        latest one, each new verdict confirmed over `confirm` evaluations, and each confirmed
        change stored with its deliveries, all in one transaction. The events confirmed, or
        None when nothing came in since the last evaluation or another collector is at it."""
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        async with self.store.evaluation(now, rules.stale_intervals) as ev:
            if ev is None or not await ev.news():
                return None
            changed, confirmed = advance(
                await ev.tracks(), await ev.counted(), now,
                min_probes=rules.min_probes, min_networks=rules.min_networks, need=rules.confirm,
            )  # fmt: skip
            # the evidence of changes (a baseline has none: a first evaluation has thousands)
            seen = await ev.sightings(
                [c.domain for c in confirmed if c.change.type is not EventType.BASELINE]
            )
            events = []
            for c in confirmed:
                event = fleet_event(
                    c.domain, c.change, seen.get(c.domain),
                    min_probes=rules.min_probes, min_networks=rules.min_networks,
                )  # fmt: skip
                sinks = [s.name for s in self.config.sinks if s.wants(event["type"], SCOPE)]
                events.append(FleetEvent(event, c.change.first_seen, c.change.confirmed_at, sinks))
            queued = await ev.write(changed, events)
        for e in events:
            self.fleet_events.labels(e.event["type"]).inc()
            if e.event["type"] != EventType.BASELINE:
                log.info(
                    "fleet: %s %s (%s), event %s", e.event["domain"], e.event["type"],
                    ", ".join(e.event["networks"]) or "no network blocks it", e.event["id"],
                )  # fmt: skip
        if queued and self.outbox is not None:
            self.outbox.wake()
        return [dict(e.event) for e in events]

    async def evaluate_forever(self) -> None:
        """Evaluate every `evaluate_every` seconds (each time only if something came in)."""
        while True:
            try:
                await self.evaluate()
            except (psycopg.Error, StoreError, TimeoutError) as exc:
                log.warning("fleet not evaluated: %s", type(exc).__name__)
            await asyncio.sleep(self.config.rules.evaluate_every)

    async def deliver_forever(self) -> None:
        """Send the fleet's events to the configured sinks (the probes' outbox, over
        PostgreSQL's queue), until the outbox is stopped."""
        queue = FleetQueue(self.config.database, lease=self.lease)
        queue.open()
        db = DbThread()
        try:
            async with Outbox(
                queue, self.config.sinks, db=db, on_result=self._delivered,
                clock=lambda: datetime.fromtimestamp(self.clock(), UTC),
            ) as outbox:  # fmt: skip
                self.outbox = outbox
                await outbox.serve()
        finally:
            self.outbox = None
            await asyncio.to_thread(db.close)
            await asyncio.to_thread(queue.close)

    def _delivered(self, sink: str, result: str) -> None:
        self.deliveries.labels(sink, result).inc()

    @asynccontextmanager
    async def running(self, listen: Listen) -> AsyncIterator[str]:
        """The service on `listen` with its background work: sweeping old signatures,
        evaluating the fleet, delivering its events. Yields the bound address; on the way
        out each sink finishes the delivery under way."""
        runner, address = await start(self, listen)
        chores = [
            asyncio.create_task(self.forget_forever(), name="sweeper"),
            asyncio.create_task(self.evaluate_forever(), name="evaluator"),
        ]
        delivering = asyncio.create_task(self.deliver_forever(), name="deliveries")
        try:
            yield address
        finally:
            for task in chores:
                task.cancel()
            if self.outbox is not None:  # else it has not begun: nothing under way
                self.outbox.stop()
                with suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(delivering), 15)
            delivering.cancel()
            await asyncio.gather(*chores, delivering, return_exceptions=True)
            await runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.config.max_body,
            middlewares=[self._count, _errors(self.config.max_body)],
        )
        app.router.add_post(SUBMISSIONS, self.submit)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        FleetViews(self.config, self.store, self.clock).add_routes(app)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count each submission's answer by probe (a name the config does not know is
        counted as `unknown`: a stranger cannot grow the metrics)."""
        response: web.StreamResponse = await handler(request)
        if request.path == SUBMISSIONS:
            name = request.headers.get(signing.PROBE_HEADER, "")
            probe = name if name in self.config.probes else "unknown"
            self.submissions.labels(probe, str(response.status)).inc()
        return response

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text: submissions and rows by probe, and each probe's lag and
        staleness as of now."""
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        for p in await self.store.probes(now, rules.stale_intervals):
            if p["last_finished"] is not None:
                self.lag.labels(p["name"]).set((now - p["last_finished"]).total_seconds())
            self.stale.labels(p["name"]).set(0 if p["fresh"] else 1)
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def submit(self, request: web.Request) -> web.Response:
        name = request.headers.get(signing.PROBE_HEADER, "")
        spec = self.config.probes.get(name)
        if spec is None:
            return error(401, f"unknown probe {name[:64]!r}")
        body = await request.read()  # over max_body: 413, from aiohttp
        stamp = request.headers.get(signing.TIME_HEADER)
        nonce = request.headers.get(signing.NONCE_HEADER)
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        refusal = signing.check(spec.token, body, stamp, nonce, signature, self.clock())
        if refusal is not None:
            return error(401, refusal.reason)
        assert stamp is not None and signature is not None
        try:
            sub = submission.parse(body)
        except submission.Invalid as exc:
            return error(400, str(exc))
        if sub.probe != name:
            return error(400, f"probe: {sub.probe!r} is not the probe that signed ({name!r})")
        expires = datetime.fromtimestamp(int(stamp) + signing.MAX_SKEW, UTC)
        probe_id = self.probe_ids[name]
        try:
            if isinstance(sub, RoundSummary):
                stored = await self.store.add_round(probe_id, sub, signature, expires)
                if stored:
                    self.rows.labels(name).inc(len(sub.domains))
            else:
                stored = await self.store.add_transition(probe_id, sub, signature, expires)
        except Replayed as exc:
            return error(409, str(exc))
        return web.json_response({"id": sub.id, "stored": stored, "duplicate": not stored})

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            counts = await self.store.counts()
        except psycopg.Error as exc:
            return error(503, f"database: {type(exc).__name__}")
        return web.json_response(
            {"status": "ok", "version": __version__, "probes": len(self.config.probes), **counts}
        )


def _errors(limit: int) -> Any:
    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"the body is over {limit} bytes")
        except (psycopg.OperationalError, TimeoutError) as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            return error(503, "the collector's database is unavailable; try again later")

    return errors


async def start(collector: Collector, listen: Listen) -> tuple[web.AppRunner, str]:
    return await serve_app(collector.app(), listen, "collector")
