"""What the database says, for people: `status` and `history` as rich renderables.

Pure functions of rows read from the store, so they are tested without a terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import NATIONAL, NOTABLE_NX, ResolverState, Verdict
from nsdi_tracker.ui.palette import STATES, rank, style_of

Row = Mapping[str, Any]


def age(since: str | None, now: datetime) -> str:
    """A compact age: 45s, 12m, 5h, 3d."""
    if not since:
        return ""
    secs = max(int((now - parse_iso(since)).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def duration(seconds: float) -> str:
    """An interval as people say it: 45 s, 5 min, 1.5 h."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def overdue(
    last_round: Row | None, interval: float | None, now: datetime
) -> tuple[float, float] | None:
    """(seconds since, interval) when the last round ended more than two intervals ago (the
    daemon stopped, or cannot finish a round), else None. The interval is the one the round
    was due on (the daemon keeps it), else `interval` (the config's); without either, None."""
    if last_round is None:
        return None
    interval = last_round.get("interval") or interval
    if not interval:
        return None
    since = (now - parse_iso(last_round["finished"])).total_seconds()
    return (since, interval) if since > 2 * interval else None


def stale(last_round: Row | None, interval: float | None, now: datetime) -> str | None:
    """What the dashboard and `status` say of an overdue last round (see `overdue`)."""
    late = overdue(last_round, interval, now)
    if late is None or last_round is None:
        return None
    return (
        f"last round {age(last_round['finished'], now)} ago: rounds are due every "
        f"{duration(late[1])}; is the daemon running?"
    )


def cell(row: Row | None, now: datetime) -> Text:
    """A verdict with its age, a pending candidate as `-> removed? 1/2`, and `held 12m`
    while the resolver is down (the verdict is from before)."""
    if row is None:
        return Text("")
    verdict = row["verdict"]
    text = Text(verdict or "new", style=style_of(verdict))
    if row.get("nxdomain") in NOTABLE_NX:  # the NXDOMAIN's look is the news
        text.append(f" ({row['nxdomain']})", style=style_of(verdict))
    if row["since"]:
        text.append(f" {age(row['since'], now)}", style="dim")
    if row.get("held_since"):
        text.append(f", held {age(row['held_since'], now)}", style="italic dim")
    if row["pending"]:
        text.append(f" → {row['pending']}? {row['pending_rounds']}", style="italic")
    return text


def resolver_line(resolvers: Sequence[Row], now: datetime) -> Text:
    """`resolvers: nsdi-b DOWN 12m (its verdicts held)`, pending changes, or `all up`."""
    text = Text("resolvers: ")
    parts = 0
    for r in resolvers:
        down = r["state"] == ResolverState.DOWN
        if not down and not r["pending"]:
            continue
        name = "every national resolver" if r["resolver"] == NATIONAL else r["resolver"]
        text.append(", " if parts else "")
        parts += 1
        if down:
            text.append(f"{name} DOWN", style=STATES[ResolverState.DOWN])
            text.append(f" {age(r['since'], now)} (its verdicts held)", style="dim")
        else:
            text.append(f"{name} → {r['pending']}? {r['pending_rounds']}", style="italic")
    if not parts:
        text.append("all up" if resolvers else "none measured yet", style="dim")
    return text


_STATE_KEYS = ("verdict", "since", "pending", "pending_rounds", "pending_since", "held_since")


def status_json(
    rows: Sequence[Row],
    last_round: Row | None,
    backlog: Mapping[str, int],
    resolvers: Sequence[Row] = (),
) -> dict[str, Any]:
    domains: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = domains.setdefault(
            r["domain"],
            {"domain": r["domain"], "label": r["label"], "category": r["category"],
             "watched": bool(r["watched"]), "national": None, "resolvers": {}},
        )  # fmt: skip
        state = {
            k: r.get(k)
            for k in (
                "verdict",
                "since",
                "pending",
                "pending_rounds",
                "pending_since",
                "held_since",
                "nxdomain",
            )
        }
        if r["scope"] == NATIONAL:
            d["national"] = state
        else:
            d["resolvers"][r["scope"]] = {"role": r["role"], **state}
    return {
        "last_round": last_round,
        "deliveries": dict(backlog),
        "resolvers": [dict(r) for r in resolvers],
        "domains": list(domains.values()),
    }


def render_status(
    rows: Sequence[Row],
    last_round: Row | None,
    backlog: Mapping[str, int],
    now: datetime,
    resolvers: Sequence[Row] = (),
    interval: float | None = None,
) -> RenderableType:
    """The current verdicts, the headline counts, the resolvers and the last round; a stale
    last round (more than two `interval`s ago) is said first, in bold."""
    scopes = list(dict.fromkeys(r["scope"] for r in rows if r["scope"] != NATIONAL))
    by: dict[str, dict[str, Row]] = {}
    for r in rows:
        by.setdefault(r["domain"], {})[r["scope"]] = r
    table = Table(header_style="bold", title_justify="left", title="current verdicts")
    table.add_column("domain", no_wrap=True)
    table.add_column("label", overflow="ellipsis", max_width=22)
    table.add_column("national", no_wrap=True)
    for s in scopes:
        table.add_column(s, no_wrap=True)

    def key(domain: str) -> tuple[int, str]:
        v = by[domain].get(NATIONAL, {}).get("verdict")
        return (rank(Verdict(v) if v else None), domain)

    for domain in sorted(by, key=key):
        scoped = by[domain]
        first = next(iter(scoped.values()))
        table.add_row(
            domain,
            first["label"] or "",
            cell(scoped.get(NATIONAL), now),
            *(cell(scoped.get(s), now) for s in scopes),
        )
    counts = Counter(by[d].get(NATIONAL, {}).get("verdict") or "new" for d in by)
    summary = Text("national: ")
    for i, (verdict, n) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        summary.append(", " if i else "")
        summary.append(f"{n} {verdict}", style=style_of(verdict))
    foot = Text("", style="dim")
    if last_round:
        foot.append(
            f"last round #{last_round['id']} {last_round['status']}, "
            f"{age(last_round['finished'], now)} ago ({last_round['finished']})"
        )
    else:
        foot.append("no rounds yet")
    foot.append(
        f" · deliveries: {backlog.get('pending', 0)} pending, {backlog.get('failed', 0)} failed"
    )
    warning = stale(last_round, interval, now)
    parts = [Text(warning, style="bold red")] if warning else []
    return Group(*parts, table, summary, resolver_line(resolvers, now), foot)


def render_history(domain: str, rows: Sequence[Row]) -> RenderableType:
    """A timeline, one block per transition: readable at 80 columns."""
    if not rows:
        return Text(f"{domain}: no confirmed transitions yet", style="dim")
    out = Text(f"{domain}: confirmed transitions, oldest first\n", style="bold")
    for r in rows:
        out.append(f"\n{r['confirmed_at']}  ", style="bold")
        out.append(f"{r['scope']:<10} {r['type']:<11} ")
        out.append(r["from"] or "—", style=style_of(r["from"]))
        out.append(" → ")
        out.append(r["to"], style=style_of(r["to"]))
        out.append(f"\n    first seen {r['first_seen']}, confirmed after {r['rounds']} rounds\n")
        if r["domain"] is None:  # the resolver itself, not this domain
            out.append(f"    the resolver itself: controls {r['rcode']}\n")
            held = "; its verdicts held meanwhile" if r["to"] == ResolverState.DOWN else ""
            out.append(f"    {r['reason']}{held}\n", style="dim")
            continue
        reply = " ".join([r["rcode"], r["nxdomain"], *r["addresses"]]).split()
        out.append(f"    reply: {' '.join(reply)}; authority: {r['authority']}\n")
        refs = " ".join([r["reference_consensus"], *r["reference_addresses"]])
        out.append(f"    references: {refs}\n")
        out.append(f"    {r['reason']}\n", style="dim")
    return out
