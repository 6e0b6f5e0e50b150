"""What each page shows, as plain values for its template: the reads a page makes (in one
read transaction, on a reader thread) and the rows turned into cells, words and plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from markupsafe import Markup

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import NATIONAL, NOTABLE_NX, Role
from nsdi_tracker.dns.latency import histogram_quantile
from nsdi_tracker.settings.config import Schedule
from nsdi_tracker.store.protocols import ReadModel
from nsdi_tracker.store.records import NEW
from nsdi_tracker.ui.palette import headline_order
from nsdi_tracker.ui.views import overdue
from nsdi_tracker.web import plots
from nsdi_tracker.web.evidence import evidence_words
from nsdi_tracker.web.i18n import Words

PAGE = 100  # domains per overview page
NO_CATEGORY = "~"  # the category filter's value for domains without one
Row = Mapping[str, Any]


class Health(Protocol):
    """The source's health (service.health.Assessment)."""

    @property
    def healthy(self) -> bool: ...

    @property
    def reason(self) -> str: ...


# -- reads (blocking, on a reader thread) -----------------------------------------------------


def overview_read(
    store: ReadModel,
    rank: Sequence[str],
    verdicts: Sequence[str],
    category: str | None,
    search: str,
    offset: int,
) -> dict[str, Any]:
    with store.read_transaction():
        total, names = store.domain_page(
            rank,
            verdicts=verdicts,
            category=None if not category else "" if category == NO_CATEGORY else category,
            search=search or None,
            offset=offset,
            limit=PAGE,
        )
        return {
            "total": total,
            "offset": offset,
            "names": names,
            "rows": store.status(domains=names) if names else [],
            "totals": store.headline_totals(),
            "categories": store.categories(),
            "resolvers": store.resolver_status(),
            "last": store.last_round(),
        }


def domain_read(store: ReadModel, name: str, fallback_interval: float) -> dict[str, Any] | None:
    with store.read_transaction():
        info = store.domain_info(name)
        if info is None:
            return None
        history = store.history(name)
        first = min((r["first_seen"] or r["confirmed_at"] for r in history), default=None)
        return {
            "info": info,
            "rows": store.status(domain=name),
            "history": history,
            "last": store.last_round(),
            "gaps": store.round_gaps(first or info["first_seen"], fallback_interval),
        }


# -- cells and words ----------------------------------------------------------------------------


def cell(row: Row | None, w: Words, now: datetime) -> dict[str, Any]:
    """One verdict as the page shows it: the word (with a forged or rewritten NXDOMAIN said),
    how long it has held, a pending change, a hold while its resolver is down."""
    if row is None:
        return {"verdict": NEW, "word": "", "notes": []}
    verdict = row["verdict"] or NEW
    word = w.verdict(row["verdict"])
    if row.get("nxdomain") in NOTABLE_NX:
        word += f" ({w('nx.short.' + row['nxdomain'])})"
    notes = []
    if row["verdict"] and row["since"]:
        notes.append(w("for", span=w.span((now - parse_iso(row["since"])).total_seconds())))
    if row.get("pending"):
        notes.append(w("pending", verdict=w.verdict(row["pending"]), n=row["pending_rounds"]))
    if row.get("held_since"):
        notes.append(w("held", resolver=row["scope"], since=row["held_since"][:16]))
    return {"verdict": verdict, "word": word, "notes": notes, "since": row.get("since")}


def columns(resolver_rows: Sequence[Row]) -> list[str]:
    """The resolvers that get a column: the national and observed ones, not the references."""
    return sorted(
        r["resolver"] for r in resolver_rows if r["role"] in (Role.NATIONAL, Role.OBSERVED)
    )


def overview_context(
    data: Mapping[str, Any],
    w: Words,
    health: Health,
    schedule: Schedule | None,
    now: datetime,
    next_round: datetime | None,
) -> dict[str, Any]:
    scopes = columns(data["resolvers"])
    by: dict[str, dict[str, Row]] = {}
    for r in data["rows"]:
        by.setdefault(r["domain"], {})[r["scope"]] = r
    rows = []
    for name in data["names"]:
        mine = by.get(name, {})
        first = next(iter(mine.values()), {})
        rows.append(
            {
                "name": name,
                "label": first.get("label") or "",
                "category": first.get("category") or "",
                "national": cell(mine.get(NATIONAL), w, now),
                "cells": [cell(mine.get(s), w, now) for s in scopes],
            }
        )
    totals = data["totals"]
    counts = [
        (str(v), totals[str(v)], w.verdict(v)) for v in headline_order() if totals.get(str(v))
    ]
    if totals.get(None):
        counts.append((NEW, totals[None], w.verdict(None)))
    return {
        "scopes": scopes,
        "rows": rows,
        "counts": counts,
        "total": data["total"],
        "first": data["offset"] + 1,
        "last_index": data["offset"] + len(rows),
        "more": data["offset"] + len(rows) < data["total"],
        "categories": data["categories"],
        "verdicts": [(str(v), w.verdict(v)) for v in headline_order()] + [(NEW, w.verdict(None))],
        "legend": [(str(v), w.verdict(v), w(f"explain.{v}")) for v in headline_order()],
        **round_line(data["last"], w, health, schedule, now, next_round),
    }


def round_line(
    last: Row | None,
    w: Words,
    health: Health,
    schedule: Schedule | None,
    now: datetime,
    next_round: datetime | None,
) -> dict[str, Any]:
    """The status line: the last round, when the next is due, health, and a stale warning
    when the last round ended more than two intervals ago."""
    if last is None:
        return {"round": w("round.none"), "stale": None, "health": None}
    ago = (now - parse_iso(last["finished"])).total_seconds()
    said = w("round.last", id=last["id"], status=w(f"r.{last['status']}"), ago=w.span(ago))
    late = overdue(last, schedule.interval if schedule else None, now)
    stale = None
    if late is not None:
        stale = w("stale", ago=w.span(late[0]), every=w.span(late[1]))
    elif next_round is not None:
        said += " · " + w("round.next", span=w.span((next_round - now).total_seconds()))
    state: tuple[bool | None, str]
    if schedule is None:
        state = (None, w("health.published"))
    elif health.healthy:
        state = (True, w("health.ok"))
    else:
        state = (False, w("health.failing", reason=health.reason))
    return {"round": said, "stale": stale, "health": state}


def current_cells(rows: Sequence[Row], w: Words, now: datetime) -> list[dict[str, Any]]:
    ordered = sorted(rows, key=lambda r: (r["scope"] != NATIONAL, r["scope"]))
    return [{"scope": r["scope"], "role": r["role"], **cell(r, w, now)} for r in ordered]


def described(row: Row, w: Words) -> dict[str, Any]:
    """A change-log row with its words: the event, the verdicts and the evidence."""
    return {
        **row,
        "type_word": w.event(row["type"]),
        "from_word": w.verdict(row["from"]) if row["from"] else "",
        "to_word": w.verdict(row["to"]),
        "evidence_words": evidence_words(row, w) if row["domain"] is not None else [],
        "resolver_event": row["domain"] is None,
    }


# -- the resolvers ----------------------------------------------------------------------------


def resolver_context(
    states: Sequence[Row], rounds: Sequence[Row], w: Words
) -> tuple[list[dict[str, Any]], list[Markup]]:
    """The resolvers' table (state, and the last round's showing) and the plots of their
    recent rounds: controls passed, usable answers, latency p50 and p99."""
    names = sorted({n for r in rounds for n in (r["health"] or {})})
    series: dict[str, dict[str, list[tuple[datetime, float | None]]]] = {
        k: {n: [] for n in names} for k in ("controls", "answers", "p50", "p90", "p99")
    }
    latest: dict[str, dict[str, Any]] = {}
    for r in rounds:
        at = parse_iso(r["finished"])
        for n in names:
            h = (r["health"] or {}).get(n)
            figures = _figures(h) if h else dict.fromkeys(series)
            for k, v in figures.items():
                series[k][n].append((at, v))
            if h:
                latest[n] = {**h, **figures}
    state = {r["resolver"]: r for r in states}
    table = []
    for n in names:
        h, s = latest.get(n, {}), state.get(n, {})
        table.append(
            {
                "name": n,
                "role": w(f"role.{h['role']}") if h.get("role") else "",
                "state": s.get("state"),
                "state_word": w.verdict(s["state"]) if s.get("state") else "",
                "since": s.get("since"),
                "controls": _percent(h.get("controls")),
                "answers": _percent(h.get("answers")),
                "latency": " / ".join(_ms(h.get(k)) for k in ("p50", "p90", "p99")),
                "rewrites": h.get("rewrites_nxdomain"),
            }
        )
    if not rounds:
        return table, []
    start, end = parse_iso(rounds[0]["finished"]), parse_iso(rounds[-1]["finished"])
    plotted = [
        plots.line_plot(series["controls"], start, end, w("plot.controls"), top=100),
        plots.line_plot(series["answers"], start, end, w("plot.answers"), top=100),
        plots.line_plot(series["p50"], start, end, w("plot.p50")),
        plots.line_plot(series["p99"], start, end, w("plot.p99")),
    ]
    return table, plotted


def _figures(h: Mapping[str, Any]) -> dict[str, float | None]:
    total, ok = h.get("controls_total") or 0, h.get("controls_ok") or 0
    outcomes = h.get("outcomes") or {}
    finals = sum(outcomes.values())
    usable = sum(outcomes.get(k, 0) for k in ("answer", "nodata", "nxdomain"))
    hist = h.get("latency_hist") or []
    return {
        "controls": 100 * ok / total if total else None,
        "answers": 100 * usable / finals if finals else None,
        "p50": _finite(histogram_quantile(hist, 0.5)),
        "p90": _finite(histogram_quantile(hist, 0.9)),
        "p99": _finite(histogram_quantile(hist, 0.99)),
    }


def _finite(v: float | None) -> float | None:
    return None if v is None or v == float("inf") else v


def _percent(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}%"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"≤{v:g} ms"
