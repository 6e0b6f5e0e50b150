"""The collector's reads: the fleet's verdicts and each domain's (`/api/fleet/status`,
`/api/fleet/domains/{name}`), the fleet's own transitions and the probes' (each as JSON and
CSV); and `fleet_view`, the client `fleet status` reads them with."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from nsdi_tracker.core.errors import InvalidName, TrackerError
from nsdi_tracker.core.names import normalize
from nsdi_tracker.judge.fleet import Sighting, judge
from nsdi_tracker.service.source import BadRequest, query_int
from nsdi_tracker.settings.collector import CollectorConfig
from nsdi_tracker.settings.sinks import DEFAULT_EVENTS
from nsdi_tracker.store.postgres.fleet import FleetStore
from nsdi_tracker.ui.export import changelog_filter

PROBE_CSV = ("event_id", "confirmed_at", "probe", "isp", "asn", "domain", "scope", "type",
             "from", "to")  # fmt: skip
FLEET_CSV = ("event_id", "confirmed_at", "first_seen", "domain", "type", "from", "to",
             "networks", "blocked_at", "resolving_at")  # fmt: skip


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class FleetViews:
    def __init__(
        self, config: CollectorConfig, store: FleetStore, clock: Callable[[], float]
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/fleet/status", self.fleet_status)
        app.router.add_get("/api/fleet/domains/{domain}", self.fleet_domain)
        app.router.add_get("/api/fleet/transitions", self.fleet_transitions)
        app.router.add_get("/api/fleet/transitions.csv", self.fleet_transitions_csv)
        app.router.add_get("/api/fleet/probe-transitions", self.probe_transitions)
        app.router.add_get("/api/fleet/probe-transitions.csv", self.probe_transitions_csv)

    async def fleet_status(self, request: web.Request) -> web.Response:
        """Every probe (stale or not) and every domain's fleet verdict with its evidence:
        which probes see it blocked, in which networks, which see it resolve."""
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        probes = await self.store.probes(now, rules.stale_intervals)
        counted, blocked_at = await self.store.fleet_counts(now, rules.stale_intervals)
        confirmed = await self.store.fleet_states()
        domains = []
        for c in counted:
            state = confirmed.get(c.domain, {})
            domains.append({
                "domain": c.domain,
                "verdict": c.verdict(rules.min_probes, rules.min_networks),
                "blocked_networks": c.networks,
                "blocked_at": blocked_at.get(c.domain, []),
                "resolving": c.resolving,
                "confirmed": state.get("verdict"),
                "confirmed_networks": state.get("networks", []),
                "since": state.get("since"),
            })  # fmt: skip
        body = {
            "rules": {"min_probes": rules.min_probes, "min_networks": rules.min_networks,
                      "stale_intervals": rules.stale_intervals, "confirm": rules.confirm},
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
            return error(400, f"domain: {exc}")
        rules = self.config.rules
        now = datetime.fromtimestamp(self.clock(), UTC)
        rows = await self.store.domain_sightings(name, now, rules.stale_intervals)
        if not rows:
            return error(404, f"{name}: no probe has reported it")
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
            "confirmed": (await self.store.fleet_states(name)).get(name),
            "probes": [{**r, "stale": not r.pop("fresh")} for r in rows],
            "transitions": [
                r async for r in self.store.fleet_transitions(domain=name, types=(), limit=100)
            ],
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _filters(self, request: web.Request, *, fleet: bool) -> dict[str, Any]:
        """The transitions' filters: domain, probe (the probes' only), type (comma-separated;
        the fleet's leave baselines out unless asked), since (an ISO time or an age such as
        7d), read as `export` reads them; ValueError names the one that is wrong."""
        q = request.query
        known = {"domain", "type", "since", "limit"} | (set() if fleet else {"probe"})
        unknown = sorted(set(q) - known)
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r}")
        flt = changelog_filter(
            datetime.fromtimestamp(self.clock(), UTC),
            since=q.get("since"), domain=q.get("domain"), type=q.get("type"),
        )  # fmt: skip
        types = list(flt.types) or (sorted(DEFAULT_EVENTS) if fleet else [])
        out: dict[str, Any] = {"types": types, "domain": flt.domain, "since": flt.since}
        if q.get("probe"):
            out["probe"] = q["probe"]
        return out

    async def fleet_transitions(self, request: web.Request) -> web.Response:
        """The fleet's own confirmed transitions, newest first, each with its event (`limit`,
        1 to 1000, default 100)."""
        return await self._listed(request, fleet=True)

    async def probe_transitions(self, request: web.Request) -> web.Response:
        """The probes' confirmed transitions, newest first (`limit`, 1 to 1000, default 100)."""
        return await self._listed(request, fleet=False)

    async def _listed(self, request: web.Request, *, fleet: bool) -> web.Response:
        try:
            flt = self._filters(request, fleet=fleet)
            limit = query_int(request, "limit", 100, 1, 1000)
        except (ValueError, BadRequest) as exc:
            return error(400, str(exc))
        rows = self.store.fleet_transitions if fleet else self.store.transitions
        listed = [r async for r in rows(**flt, limit=limit)]
        body = {"transitions": listed, "count": len(listed)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def fleet_transitions_csv(self, request: web.Request) -> web.StreamResponse:
        """All of the fleet's transitions (filtered) as CSV, streamed."""
        return await self._csv(request, fleet=True)

    async def probe_transitions_csv(self, request: web.Request) -> web.StreamResponse:
        """All of the probes' transitions (filtered) as CSV, streamed."""
        return await self._csv(request, fleet=False)

    async def _csv(self, request: web.Request, *, fleet: bool) -> web.StreamResponse:
        try:
            flt = self._filters(request, fleet=fleet)
        except ValueError as exc:
            return error(400, str(exc))
        columns, rows, name = (
            (FLEET_CSV, self.store.fleet_transitions, "nsdi-fleet-transitions.csv")
            if fleet
            else (PROBE_CSV, self.store.transitions, "nsdi-probe-transitions.csv")
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(request)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        async for row in rows(**flt, limit=None):
            writer.writerow([_cell(row[c]) for c in columns])
            if out.tell() > 65536:
                await response.write(out.getvalue().encode())
                out.seek(0)
                out.truncate()
        await response.write(out.getvalue().encode())
        await response.write_eof()
        return response


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "" if value is None else value


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
