"""The web page: the overview, a domain's timeline, a transition's permanent page, the change
log, the resolvers and the Atom feed, in English or Russian, read-only.

Reads go through the source's reader threads (as the JSON API's do); rendering is pure
(nsdi_tracker.web). Links carry the path prefix a reverse proxy serves the page under: the
X-Forwarded-Prefix header, else `[http] base_path`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from aiohttp import web

from nsdi_tracker import __version__
from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.errors import InvalidName
from nsdi_tracker.core.model import NATIONAL, EventType, Verdict
from nsdi_tracker.core.names import normalize
from nsdi_tracker.service.source import (
    DAEMON,
    BadRequest,
    StatusSource,
    query_int,
    read_filter,
)
from nsdi_tracker.settings.keys import BASE_PATH
from nsdi_tracker.store.records import NEW, ChangelogFilter
from nsdi_tracker.store.sqlite import Store
from nsdi_tracker.ui.palette import headline_order
from nsdi_tracker.web import feed, plots, views
from nsdi_tracker.web.i18n import Words, negotiate
from nsdi_tracker.web.render import render, stylesheet

READS: web.AppKey[OrderedDict[tuple[int, Hashable], Any]] = web.AppKey("page-reads")
READS_KEPT = 64  # pages' reads kept for the current round (each a few hundred rows at most)
T = TypeVar("T")
CHANGES_PAGE = 50
FEED_ENTRIES = 100
HEALTH_ROUNDS = 288  # the resolvers page's plots: a day of five-minute rounds
SECURITY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One request's page: its language, its words, and how it links to itself."""

    request: web.Request
    lang: str
    w: Words
    prefix: str

    def url(self, path: str, query: Mapping[str, Any] | None = None, **more: Any) -> str:
        """A link within the site, keeping the language the reader chose with ?lang=."""
        params = {k: v for k, v in {**(query or {}), **more}.items() if v not in (None, "", [], ())}
        if "lang" in self.request.query:
            params.setdefault("lang", self.lang)
        return self.prefix + path + (f"?{urlencode(params, doseq=True)}" if params else "")

    def absolute(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """The same link with scheme and host (for the feed and the permanent links): the
        Host the request came with, and https when a proxy in front says so."""
        said = self.request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        scheme = said if said in ("http", "https") else self.request.scheme
        return f"{scheme}://{self.request.host}{self.url(path, query)}"

    def other_language(self) -> str:
        other = "ru" if self.lang == "en" else "en"
        query = {**self.request.query, "lang": other}
        return self.prefix + self.request.path + "?" + urlencode(query)

    def html(self, template: str, status: int = 200, **context: Any) -> web.Response:
        body = render(template, page=self, w=self.w, version=__version__, **context)
        headers = {**SECURITY, "Content-Language": self.lang, "Vary": "Accept-Language"}
        return web.Response(
            text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
        )


def page(request: web.Request) -> Page:
    lang = negotiate(request.query.get("lang"), request.headers.get("Accept-Language"))
    prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
    if not BASE_PATH.fullmatch(prefix):  # absent, or not a plain path: never echoed
        prefix = request.app[DAEMON].served.base_path
    return Page(request, lang, Words(lang), prefix)


PAGES = ("/", "/domains/", "/changes", "/resolvers", "/feed.atom")


def is_page(request: web.Request) -> bool:
    """Whether a request is for a page (an error is HTML) rather than the JSON API."""
    path = request.path
    return path == "/" or any(path.startswith(p) for p in PAGES[1:])


def bad_request(request: web.Request, message: str) -> web.Response:
    return page(request).html("bad.html", 400, message=message)


async def _read_once(request: web.Request, key: Hashable, fn: Callable[[Store], T]) -> T:
    """What a page reads, read once per round: the database changes only when a round
    commits (and the round's snapshot is built anew), so the same page asked again until then
    is answered from memory; the last READS_KEPT reads are kept."""
    source: StatusSource = request.app[DAEMON]
    kept = request.app[READS]
    generation = source.snapshot.generation if source.snapshot else None
    if generation is not None and (generation, key) in kept:
        kept.move_to_end((generation, key))
        return cast(T, kept[generation, key])
    value: T = await source.read(fn)
    if generation is not None:
        kept[generation, key] = value
        while len(kept) > READS_KEPT:
            kept.popitem(last=False)
    return value


def add_routes(app: web.Application) -> None:
    app[READS] = OrderedDict()
    app.router.add_get("/", overview)
    app.router.add_get("/domains/{domain}", domain)
    app.router.add_get("/changes", changes)
    app.router.add_get("/changes/{event_id}", transition)
    app.router.add_get("/resolvers", resolvers)
    app.router.add_get("/feed.atom", atom_feed)
    app.router.add_get("/static/style.css", style)


async def style(request: web.Request) -> web.Response:
    return web.Response(
        body=stylesheet(),
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600", **SECURITY},
    )


def _choice(p: Page, key: str, allowed: set[str]) -> list[str]:
    chosen = [v for text in p.request.query.getall(key, []) for v in text.split(",") if v]
    for value in chosen:
        if value not in allowed:
            raise BadRequest(f"{key}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return chosen


async def overview(request: web.Request) -> web.Response:
    p = page(request)
    source: StatusSource = request.app[DAEMON]
    verdicts = _choice(p, "verdict", {*Verdict, NEW})
    category = request.query.get("category")
    search = request.query.get("q", "").strip()[:100]
    number = query_int(request, "page", 1, 1, 2**62)
    rank = [str(v) for v in headline_order()]
    key = ("overview", tuple(verdicts), category, search, number)
    data = await _read_once(
        request,
        key,
        lambda store: views.overview_read(
            store, rank, verdicts, category, search, (number - 1) * views.PAGE
        ),
    )
    verdict, _ = await source.assess()
    context = views.overview_context(
        data, p.w, verdict, source.served.schedule, source.clock(), source.next_round()
    )
    return p.html(
        "overview.html",
        **context,
        chosen={"verdict": verdicts, "category": category, "q": search},
        number=number,
    )


async def domain(request: web.Request) -> web.Response:
    p = page(request)
    source: StatusSource = request.app[DAEMON]
    try:
        name = normalize(request.match_info["domain"])
    except InvalidName as exc:
        raise BadRequest(f"domain: {exc}") from None
    schedule = source.served.schedule
    fallback = schedule.interval if schedule else 3600.0
    data = await source.read(lambda store: views.domain_read(store, name, fallback))
    if data is None:
        return p.html("missing.html", 404, message=p.w("domain.unknown", domain=name))
    now = source.clock()
    end = parse_iso(data["last"]["finished"]) if data["last"] else now
    scopes = plots.scope_order([NATIONAL, *(r["scope"] for r in data["rows"])])
    lanes, start = plots.lanes(data["history"], scopes, data["gaps"], end)
    svg = plots.timeline(lanes, start, end, lambda s: s, p.w.verdict)
    return p.html(
        "domain.html",
        name=name,
        info=data["info"],
        current=views.current_cells(data["rows"], p.w, now),
        svg=svg,
        transitions=[views.described(r, p.w) for r in reversed(data["history"])],
    )


async def transition(request: web.Request) -> web.Response:
    p = page(request)
    event_id = request.match_info["event_id"]
    row = await request.app[DAEMON].read(lambda store: store.transition(event_id))
    if row is None:
        return p.html("missing.html", 404, message=p.w("transition.unknown"))
    return p.html(
        "transition.html",
        t=views.described(row, p.w),
        evidence=row.get("evidence"),
        link=p.absolute(f"/changes/{event_id}"),
    )


def _filters(p: Page) -> tuple[ChangelogFilter, dict[str, Any]]:
    """The change log's filters from the query (as /api/transitions takes them, and `type`
    repeated or comma-separated), and the query that repeats them in links."""
    types = _choice(p, "type", set(EventType))
    given = {
        k: p.request.query.get(k, "").strip() for k in ("since", "until", "domain", "resolver")
    }
    flt = read_filter(p.request, {**given, "type": ",".join(types)})
    return flt, {**{k: v for k, v in given.items() if v}, "type": ",".join(types)}


async def changes(request: web.Request) -> web.Response:
    p = page(request)
    flt, query = _filters(p)
    before = query_int(request, "before", 0, 1, 2**62)

    def read(store: Store) -> list[dict[str, Any]]:
        return list(store.changelog(flt, before=before, newest_first=True, limit=CHANGES_PAGE + 1))

    rows = await request.app[DAEMON].read(read)
    older = rows[CHANGES_PAGE - 1]["transition_id"] if len(rows) > CHANGES_PAGE else None
    return p.html(
        "changes.html",
        rows=[views.described(r, p.w) for r in rows[:CHANGES_PAGE]],
        query=query,
        types=[str(t) for t in EventType],
        chosen_types=flt.types,
        older=older and p.url("/changes", {**query, "before": older}),
        newer=before and p.url("/changes", query),
        csv=p.url("/api/transitions.csv", query),
        json=p.url("/api/transitions.json", query),
    )


async def resolvers(request: web.Request) -> web.Response:
    p = page(request)
    source: StatusSource = request.app[DAEMON]

    def read(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with store.read_transaction():
            return store.resolver_status(), store.round_health(HEALTH_ROUNDS)

    states, rounds = await source.read(read)
    table, plotted = views.resolver_context(states, rounds, p.w)
    return p.html("resolvers.html", table=table, plots=plotted, n=len(rounds))


async def atom_feed(request: web.Request) -> web.Response:
    p = page(request)
    flt, query = _filters(p)
    if not flt.types:  # a feed of changes: first verdicts are not news
        flt = ChangelogFilter(
            flt.since, flt.until, flt.domain, flt.scope,
            tuple(str(t) for t in EventType if t is not EventType.BASELINE),
        )  # fmt: skip

    def read(store: Store) -> list[dict[str, Any]]:
        return list(store.changelog(flt, newest_first=True, limit=FEED_ENTRIES))

    rows = await request.app[DAEMON].read(read)
    selection = urlencode(sorted((k, v) for k, v in {**query, "lang": p.lang}.items() if v))
    body = feed.atom(
        rows,
        w=p.w,
        selection=selection,
        self_url=p.absolute("/feed.atom", {**query, "lang": p.lang}),
        site_url=p.absolute("/changes", query),
        permalink=lambda event_id: p.absolute(f"/changes/{event_id}"),
        now=request.app[DAEMON].clock(),
    )
    return web.Response(
        body=body, content_type="application/atom+xml", charset="utf-8", headers=SECURITY
    )
