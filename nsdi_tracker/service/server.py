"""The status server (aiohttp): health, Prometheus metrics and a read-only JSON/CSV API.

No endpoint writes. /api/status and /healthz answer from the round's snapshot, /metrics at
most once a second; other reads run on two worker threads with kept read-only connections
(see `snapshot`), so a busy client never holds up the rounds, and the rounds never hold up a
reader.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nsdi_tracker import __version__
from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.errors import InvalidName, StoreError, TrackerError
from nsdi_tracker.core.names import normalize
from nsdi_tracker.service import pages, snapshot
from nsdi_tracker.service.source import (
    DAEMON,
    BadRequest,
    StatusSource,
    query_int,
    read_filter,
)
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.sqlite import CHANGELOG_COLUMNS, ChangelogFilter, Store
from nsdi_tracker.ui.export import json_chunks, json_row
from nsdi_tracker.ui.views import status_json

PAGE_DEFAULT, PAGE_MAX = 100, 1000
CSV_BATCH = 5000
_FILTERS = ("since", "until", "domain", "resolver", "type")
METRICS_CACHE: web.AppKey[list[Any]] = web.AppKey("metrics-cache")  # [rendered at, bytes]
METRICS_TTL = 1.0


async def start(daemon: StatusSource, listen: Listen) -> tuple[web.AppRunner, str]:
    """Bind and serve; returns the runner (to clean up) and the bound address."""
    return await serve_app(make_app(daemon), listen, "status server")


async def serve_app(app: web.Application, listen: Listen, what: str) -> tuple[web.AppRunner, str]:
    """Serve `app` on `listen`; the runner (to clean up) and the bound address. TrackerError,
    naming `what`, if the address cannot be had."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise TrackerError(f"{what}: cannot listen on {listen}: {exc.strerror or exc}") from exc
    host, port = runner.addresses[0][:2]
    return runner, str(Listen(host, port))


async def until_stopped() -> None:
    """Return on SIGINT or SIGTERM (a server run from the command line)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def make_app(daemon: StatusSource) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[DAEMON] = daemon
    pages.add_routes(app)
    app.router.add_get("/api", index)
    app.router.add_get("/healthz", healthz)
    app[METRICS_CACHE] = [0.0, None]
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/transitions", api_transitions)
    app.router.add_get("/api/transitions.csv", api_transitions_csv)
    app.router.add_get("/api/transitions.json", api_transitions_json)
    app.router.add_get("/api/domains/{domain}", api_domain)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except BadRequest as exc:
        if pages.is_page(request):
            return pages.bad_request(request, str(exc))
        return web.json_response({"error": str(exc)}, status=400)
    except StoreError as exc:  # no database yet, or one this version cannot read
        return web.json_response({"error": str(exc)}, status=503)


async def index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "service": "nsdi-tracker",
            "version": __version__,
            "endpoints": [
                "/healthz",
                "/metrics",
                "/api/status",
                "/api/transitions",
                "/api/transitions.csv",
                "/api/transitions.json",
                "/api/domains/{domain}",
            ],
        }
    )


async def healthz(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    try:
        verdict, last = await daemon.assess()
    except StoreError as exc:
        return web.json_response({"status": "failing", "reason": str(exc)}, status=503)
    return web.json_response(verdict.json(last), status=200 if verdict.healthy else 503)


async def api_status(request: web.Request) -> web.Response:
    """The status of every watched name, from the round's snapshot: bytes joined to what
    changes between rounds (health, next round), with an ETag; 304 when it still holds."""
    daemon = request.app[DAEMON]
    everything = request.query.get("all", "") in ("1", "true", "yes")
    snap = daemon.snapshot
    if snap is None:
        raise StoreError("the status is not ready yet")
    body = await snap.body(everything, daemon.read)
    verdict, last = await daemon.assess()
    nxt = daemon.next_round()
    served = daemon.served
    s = served.schedule
    head: dict[str, Any] = {"version": __version__, "started": iso(daemon.started)}
    if served.show_paths:  # where files live is the operator's business
        head |= {"config": served.config and str(served.config), "database": str(served.database)}
    head |= {
        "schedule": s and {"interval": s.interval, "jitter": s.jitter, "round_timeout": s.timeout},
        "next_round": iso(nxt) if nxt else None,
        "health": verdict.json(last),
    }
    tag = f'"{snap.generation}-{int(everything)}-{zlib.crc32(orjson.dumps(head)):08x}"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if tag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=snapshot.joined(head, body), content_type="application/json", headers=headers
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, rendered at most once a second however often it is scraped."""
    source = request.app[DAEMON].metrics
    if source is None:
        raise web.HTTPNotFound(
            text="no metrics: this server publishes a database, nothing measures"
        )
    now = time.monotonic()
    cached = request.app[METRICS_CACHE]
    if cached[1] is None or now - cached[0] >= METRICS_TTL:
        cached[:] = [now, generate_latest(source.registry)]
    body = cached[1]
    assert isinstance(body, bytes)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _filter(request: web.Request) -> ChangelogFilter:
    unknown = sorted(set(request.query) - {*_FILTERS, "limit", "after"})
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r} (known: {', '.join(_FILTERS)}, "
                         "limit, after)")  # fmt: skip
    return read_filter(request, {k: request.query.get(k, "") for k in _FILTERS})


async def api_transitions(request: web.Request) -> web.Response:
    """The change log, oldest first, a page at a time; `next` continues after the last row."""
    flt = _filter(request)
    limit = query_int(request, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    after = query_int(request, "after", 0, 0, 2**62)

    def read(store: Store) -> list[dict[str, Any]]:
        return list(store.changelog(flt, with_event=True, after=after, limit=limit + 1))

    rows = await request.app[DAEMON].read(read)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        query = {k: v for k, v in request.query.items() if k != "after"}
        nxt = f"{request.path}?{urlencode({**query, 'after': rows[-1]['transition_id']})}"
    return web.json_response(
        {"transitions": [json_row(r) for r in rows], "count": len(rows), "next": nxt}
    )


async def api_transitions_csv(request: web.Request) -> web.StreamResponse:
    """The whole (filtered) change log as the CSV export writes it, streamed in batches."""
    flt = _filter(request)
    header = ",".join(CHANGELOG_COLUMNS) + "\r\n"
    return await _download(
        request, "nsdi-tracker-changelog.csv", "text/csv",
        lambda store: itertools.chain([header], store.changelog_csv(flt)),
    )  # fmt: skip


async def api_transitions_json(request: web.Request) -> web.StreamResponse:
    """The whole (filtered) change log as `export --format json` writes it, streamed."""
    flt = _filter(request)
    return await _download(
        request, "nsdi-tracker-changelog.json", "application/json",
        lambda store: json_chunks(store.changelog(flt, with_event=True)),
    )  # fmt: skip


async def _download(
    request: web.Request, name: str, content_type: str, texts: Callable[[Store], Iterator[str]]
) -> web.StreamResponse:
    """Stream `texts` of a read-only connection of its own as an attachment, in batches read
    on a worker thread: an export of millions of rows holds a batch at a time."""
    store = await asyncio.to_thread(Store.open_readonly, request.app[DAEMON].served.database)
    try:
        chunks = texts(store)
        response = web.StreamResponse(
            headers={
                "Content-Type": f"{content_type}; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(request)
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(chunks, CSV_BATCH))):
            await response.write("".join(batch).encode("utf-8"))
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(store.close)


async def api_domain(request: web.Request) -> web.Response:
    """One domain: its current verdicts per scope and every confirmed transition with evidence."""
    try:
        name = normalize(request.match_info["domain"])
    except InvalidName as exc:
        raise BadRequest(f"domain: {exc}") from None

    def read(store: Store) -> dict[str, Any] | None:
        if not store.has_domain(name):
            return None
        rows = store.status(domain=name)
        current = status_json(rows, None, {})["domains"]
        return {
            "domain": name,
            "current": current[0] if current else None,
            "transitions": store.history(name),
        }

    body = await request.app[DAEMON].read(read)
    if body is None:
        return web.json_response({"error": f"{name} has never been measured"}, status=404)
    return web.json_response(body)
