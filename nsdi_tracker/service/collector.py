"""The fleet's collector: an aiohttp service that takes probes' submissions into PostgreSQL.

POST /api/v1/submissions, with the probe's name, a timestamp and an HMAC-SHA256 signature in
headers (core.signing), the body a version-1 submission (core.submission). Answers: 200
stored (or already stored: the same id again), 400 a body that is not a valid submission
(naming the field), 401 an unknown probe or a bad or stale signature, 409 a replayed request,
413 a body over `max_body`, 503 PostgreSQL unreachable (the probe keeps it and retries).
Nothing is half-written: a submission is one transaction. The collector keeps no state of
its own, so several can run against one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
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
from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.errors import InvalidName, TrackerError
from nsdi_tracker.core.model import EventType
from nsdi_tracker.core.names import normalize
from nsdi_tracker.core.submission import RoundSummary
from nsdi_tracker.judge.fleet import Sighting, decide, judge
from nsdi_tracker.service.server import serve_app
from nsdi_tracker.service.source import BadRequest, query_int
from nsdi_tracker.settings.collector import CollectorConfig
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.postgres.fleet import FleetStore, Replayed

log = logging.getLogger("nsdi_tracker.collector")
SUBMISSIONS = "/api/v1/submissions"
FLEET_CSV = ("event_id", "confirmed_at", "probe", "isp", "asn", "domain", "scope", "type",
             "from", "to")  # fmt: skip


class Collector:
    def __init__(
        self, config: CollectorConfig, store: FleetStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
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

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.config.max_body,
            middlewares=[self._count, _errors(self.config.max_body)],
        )
        app.router.add_post(SUBMISSIONS, self.submit)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/fleet/status", self.fleet_status)
        app.router.add_get("/api/fleet/domains/{domain}", self.fleet_domain)
        app.router.add_get("/api/fleet/transitions", self.fleet_transitions)
        app.router.add_get("/api/fleet/transitions.csv", self.fleet_transitions_csv)
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
            return _error(401, f"unknown probe {name[:64]!r}")
        body = await request.read()  # over max_body: 413, from aiohttp
        stamp = request.headers.get(signing.TIME_HEADER)
        nonce = request.headers.get(signing.NONCE_HEADER)
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        refusal = signing.check(spec.token, body, stamp, nonce, signature, self.clock())
        if refusal is not None:
            return _error(401, refusal.reason)
        assert stamp is not None and signature is not None
        try:
            sub = submission.parse(body)
        except submission.Invalid as exc:
            return _error(400, str(exc))
        if sub.probe != name:
            return _error(400, f"probe: {sub.probe!r} is not the probe that signed ({name!r})")
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
            return _error(409, str(exc))
        return web.json_response({"id": sub.id, "stored": stored, "duplicate": not stored})

    async def fleet_status(self, request: web.Request) -> web.Response:
        """Every probe (stale or not) and every domain's fleet verdict with its evidence:
        which probes see it blocked, in which networks, which see it resolve."""
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        probes = await self.store.probes(now, rules.stale_intervals)
        rows = await self.store.fleet_counts(now, rules.stale_intervals)
        domains = [
            {
                "domain": domain,
                "verdict": decide(
                    blocked, len(networks), resolving, rules.min_probes, rules.min_networks
                ),
                "blocked_networks": networks,
                "blocked_at": blocked_at,
                "resolving": resolving,
            }
            for domain, blocked, networks, blocked_at, resolving in rows
        ]
        body = {
            "rules": {"min_probes": rules.min_probes, "min_networks": rules.min_networks,
                      "stale_intervals": rules.stale_intervals},
            "probes": [{**p, "stale": not p.pop("fresh")} for p in probes],
            "domains": domains,
        }  # fmt: skip
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def fleet_domain(self, request: web.Request) -> web.Response:
        """One domain: the fleet's verdict, and each probe's latest verdicts with its network
        and whether it is stale."""
        try:
            name = normalize(request.match_info["domain"])
        except InvalidName as exc:
            return _error(400, f"domain: {exc}")
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        rows = await self.store.domain_sightings(name, now, rules.stale_intervals)
        if not rows:
            return _error(404, f"{name}: no probe has reported it")
        sightings = [
            Sighting(r["probe"], r["asn"], r["national"], stale=not r["fresh"]) for r in rows
        ]
        judged = judge(sightings, rules.min_probes, rules.min_networks)
        body = {
            "domain": name,
            "verdict": judged.verdict,
            "blocked_networks": judged.networks,
            "blocked_at": judged.blocked_at,
            "resolving_at": judged.resolving_at,
            "stale": judged.stale,
            "probes": [{**r, "stale": not r.pop("fresh")} for r in rows],
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _filters(self, request: web.Request) -> dict[str, Any]:
        """The transitions' filters: domain, probe, type (comma-separated), since (ISO time);
        ValueError names the one that is wrong."""
        q = request.query
        unknown = sorted(set(q) - {"domain", "probe", "type", "since", "limit"})
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r}")
        types = [t for t in q.get("type", "").split(",") if t]
        for t in types:
            if t not in set(EventType):
                raise ValueError(f"type: {t!r} is not an event type")
        out: dict[str, Any] = {"types": types}
        if q.get("domain"):
            try:
                out["domain"] = normalize(q["domain"])
            except InvalidName as exc:
                raise ValueError(f"domain: {exc}") from None
        if q.get("probe"):
            out["probe"] = q["probe"]
        if q.get("since"):
            try:
                out["since"] = parse_iso(q["since"])
            except ValueError:
                raise ValueError(f"since: {q['since']!r} is not an ISO 8601 time") from None
        return out

    async def fleet_transitions(self, request: web.Request) -> web.Response:
        """The probes' confirmed transitions, newest first (`limit`, 1 to 1000, default 100)."""
        try:
            flt = self._filters(request)
            limit = query_int(request, "limit", 100, 1, 1000)
        except (ValueError, BadRequest) as exc:
            return _error(400, str(exc))
        rows = [r async for r in self.store.transitions(**flt, limit=limit)]
        body = {"transitions": rows, "count": len(rows)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def fleet_transitions_csv(self, request: web.Request) -> web.StreamResponse:
        """All of them (filtered) as CSV, streamed from a server-side cursor."""
        try:
            flt = self._filters(request)
        except ValueError as exc:
            return _error(400, str(exc))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="nsdi-fleet-transitions.csv"',
            }
        )
        await response.prepare(request)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(FLEET_CSV)
        async for row in self.store.transitions(**flt, limit=None):
            writer.writerow([_cell(row[c]) for c in FLEET_CSV])
            if out.tell() > 65536:
                await response.write(out.getvalue().encode())
                out.seek(0)
                out.truncate()
        await response.write(out.getvalue().encode())
        await response.write_eof()
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            counts = await self.store.counts()
        except psycopg.Error as exc:
            return _error(503, f"database: {type(exc).__name__}")
        return web.json_response(
            {"status": "ok", "version": __version__, "probes": len(self.config.probes), **counts}
        )


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _errors(limit: int) -> Any:
    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the body is over {limit} bytes")
        except (psycopg.OperationalError, TimeoutError) as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            return _error(503, "the collector's database is unavailable; try again later")

    return errors


async def start(collector: Collector, listen: Listen) -> tuple[web.AppRunner, str]:
    return await serve_app(collector.app(), listen, "collector")


async def fleet_view(base: str, limit: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A collector's /api/fleet/status and the details of the `limit` domains a screen shows
    first (removals, then filtering): what `fleet status` draws. TrackerError if the
    collector cannot be asked."""
    import aiohttp

    from nsdi_tracker.core.redact import url as shown
    from nsdi_tracker.ui.fleet import rows_first

    async def get(session: aiohttp.ClientSession, path: str) -> Any:
        async with session.get(base + path) as r:
            if r.status != 200:
                said = (await r.text())[:200]
                raise TrackerError(f"{shown(base)}{path}: HTTP {r.status}: {said}")
            return await r.json()

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            status = await get(session, "/api/fleet/status")
            details = {
                d["domain"]: await get(session, f"/api/fleet/domains/{d['domain']}")
                for d in rows_first(status["domains"], limit)
            }
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TrackerError(f"cannot reach the collector at {shown(base)}: {exc}") from None
    return status, details
