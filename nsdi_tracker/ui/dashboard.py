"""The terminal dashboard: a snapshot read from the store (`frame`), and a pure function that
draws it.

`take()` reads everything a frame needs through the store's read methods (one short read
transaction, so the writer is never held up); `render()` turns a snapshot and a terminal size
into rich renderables, with no I/O, so frames are tested without a terminal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import NATIONAL, NxLabel, ResolverState, RoundStatus, Verdict
from nsdi_tracker.dns.latency import histogram_quantile
from nsdi_tracker.ui.frame import RECENT, Row, Snapshot, read, strip_width, take
from nsdi_tracker.ui.palette import PALETTE, ROUNDS, STATES, rank, style_of
from nsdi_tracker.ui.views import age, resolver_line, stale

__all__ = ["Snapshot", "read", "render", "take"]

_OFF_ROUND = {RoundStatus.TIMEOUT: "×", RoundStatus.OFFLINE: "·"}
MIN_ROWS = 12  # domain rows a small screen keeps before the tables below them
DOMAIN_MIN = 20  # characters of a domain name always shown
# In a narrow cell, a removal whose NXDOMAIN was forged or rewritten says so in its word.
NOTABLE_NXDOMAIN = {NxLabel.FORGED: "FORGED", NxLabel.REWRITTEN: "REWRITE"}


@dataclass(frozen=True, slots=True)
class DomainRow:
    domain: str
    category: str | None
    national: Row | None
    scopes: dict[str, Row]
    strip: list[str | None]  # per round: the confirmed headline then, "×"/"·" for lost rounds

    @property
    def verdict(self) -> Verdict | None:
        v = self.national["verdict"] if self.national else None
        return Verdict(v) if v else None

    @property
    def interesting(self) -> bool:
        """Worth a row when rows are scarce: not plainly present, pending, or changed lately."""
        pending = any(r["pending"] for r in (self.national, *self.scopes.values()) if r)
        changed = len({v for v in self.strip if v not in (None, *_OFF_ROUND.values())}) > 1
        return self.verdict is not Verdict.PRESENT or pending or changed

    def key(self) -> tuple[int, int, str, str]:
        pending = 0 if self.national and self.national["pending"] else 1
        return (rank(self.verdict), pending, self.category or "~", self.domain)


def domain_rows(snap: Snapshot, strip: int) -> list[DomainRow]:
    by: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in snap.status:
        by[r["domain"]][r["scope"]] = r
    rounds = list(snap.rounds)[-strip:] if strip else []
    changes: dict[str, list[tuple[int, str | None, str]]] = defaultdict(list)
    for domain, round_id, old, new in snap.changes:
        changes[domain].append((round_id, old, new))
    rows = []
    for domain, scopes in by.items():
        national = scopes.pop(NATIONAL, None)
        rows.append(
            DomainRow(
                domain=domain,
                category=(national or next(iter(scopes.values()), {})).get("category"),
                national=national,
                scopes=scopes,
                strip=_strip(rounds, changes.get(domain, []), national),
            )
        )
    rows.sort(key=DomainRow.key)
    return rows


def _strip(
    rounds: Sequence[Row], changes: list[tuple[int, str | None, str]], national: Row | None
) -> list[str | None]:
    """The confirmed headline at each round, walking back from the current verdict."""
    verdict: str | None = national["verdict"] if national else None
    out: list[str | None] = []
    pending = sorted(changes, key=lambda c: c[0])
    for r in reversed(rounds):
        while pending and pending[-1][0] > r["id"]:
            verdict = pending.pop()[1]  # before that transition: its `from`
        out.append(_OFF_ROUND.get(r["status"], verdict))
    return list(reversed(out))


def render(snap: Snapshot, width: int, height: int | None = None) -> RenderableType:
    """One frame for a terminal of `width` columns (and `height` rows, if it is one)."""
    strip = strip_width(width)
    rows = domain_rows(snap, strip)
    resolvers = _resolvers(snap)
    extras: list[RenderableType] = [_recent_table(snap), _health_table(snap, resolvers)]
    budget = None
    if height is not None:
        # The domains come first: on a small screen (80x24) the resolver table, then the
        # recent transitions give way until MIN_ROWS domain rows fit (or every domain does).
        sizes = [min(len(snap.transitions), RECENT) + 4, len(resolvers) + 4]
        fixed = 10 + _outage(snap) + sum(sizes)
        want = min(len(rows), MIN_ROWS) + 1
        while extras and height - fixed < want:
            extras.pop()
            fixed -= sizes.pop()
        budget = max(height - fixed, 3)
    matrix = _matrix(snap, rows, resolvers, strip, width, budget)
    return Group(_header(snap, rows, resolvers), matrix, *extras)


def _resolvers(snap: Snapshot) -> list[tuple[str, str]]:
    """(name, role) of every resolver with a state, national first, in a stable order."""
    seen: dict[str, str] = {}
    for r in snap.status:
        if r["scope"] != NATIONAL:
            seen.setdefault(r["scope"], r["role"])
    health = snap.last_round_health()
    for name, h in health.items():
        seen.setdefault(name, h.get("role", ""))
    order = {"national": 0, "observed": 1, "reference": 2}
    return sorted(seen.items(), key=lambda x: (order.get(x[1], 3), x[0]))


def _header(snap: Snapshot, rows: list[DomainRow], resolvers: list[tuple[str, str]]) -> Group:
    """Three lines: the database; the last and next round with the resolvers; the counts."""
    title = Text("nsdi-tracker ", style="bold", no_wrap=True, overflow="ellipsis")
    title.append(snap.database, style="dim")
    t = Text(no_wrap=True, overflow="ellipsis")
    last = snap.last_round
    if last is None:
        t.append("no round yet", style="yellow")
    else:
        status = last["status"]
        t.append(f"last round #{last['id']} ")
        t.append(status, style=ROUNDS[RoundStatus(status)])
        t.append(f" {age(last['finished'], snap.now)} ago")
        interval = last.get("interval") or snap.interval
        if interval:
            due = parse_iso(last["started"]) + timedelta(seconds=interval)
            secs = (due - snap.now).total_seconds()
            t.append(f" · next in ~{_span(secs)}" if secs > 0 else " · next due now", style="dim")
    warning = stale(last, snap.interval, snap.now)
    if warning:
        t = Text(warning, style="bold red", no_wrap=True, overflow="ellipsis")
    health = snap.last_round_health()
    if health:
        up = sum(1 for h in health.values() if h.get("up", h.get("controls_passed")))
        t.append(f" · resolvers {up}/{len(health)} up", style="" if up == len(health) else "yellow")
    if snap.totals is not None:
        counts = Counter({Verdict(v): n for v, n in snap.totals.items() if v is not None and n})
        new = snap.totals.get(None, 0)
    else:
        counts = Counter(r.verdict for r in rows if r.verdict is not None)
        new = sum(1 for r in rows if r.verdict is None)
    c = Text("headline: ", no_wrap=True, overflow="ellipsis")
    parts = [(v, counts[v]) for v in sorted(counts, key=rank)]
    for i, (verdict, n) in enumerate(parts):
        c.append(", " if i else "")
        c.append(f"{n} {verdict}", style=PALETTE[verdict].style)
    if new:
        c.append(f"{', ' if parts else ''}{new} awaiting a first verdict", style="dim")
    if not parts and not new:
        c.append("nothing measured yet", style="dim")
    b = snap.backlog
    c.append(f" · deliveries {b.get('pending', 0)} pending")
    c.append(f", {b.get('failed', 0)} failed", style="bold red" if b.get("failed") else "")
    lines = [title, t, c]
    if _outage(snap):
        outage = resolver_line(snap.resolver_states, snap.now)  # an outage is one line
        outage.no_wrap, outage.overflow = True, "ellipsis"
        lines.append(outage)
    return Group(*lines)


def _outage(snap: Snapshot) -> bool:
    """A resolver is down or about to change: the header gives it a line of its own."""
    return any(r["state"] == ResolverState.DOWN or r["pending"] for r in snap.resolver_states)


def _matrix(
    snap: Snapshot,
    rows: list[DomainRow],
    resolvers: list[tuple[str, str]],
    strip: int,
    width: int,
    budget: int | None,
) -> Group:
    """The domains by scope. Narrow, verdicts are short words (`REMOVED`, `ok`); where the
    resolver columns would not fit with their ages, a resolver's cell is its word alone (the
    national column keeps its age). The domain column keeps at least DOMAIN_MIN characters."""
    wide = width >= 120
    judged = [(n, role) for n, role in resolvers if role != "reference"]
    down = {r["resolver"] for r in snap.resolver_states if r["state"] == ResolverState.DOWN}
    # domain, national with its age, each resolver with its age, the strip, 2 spaces apart
    tight = not wide and DOMAIN_MIN + 13 * (len(judged) + 1) + strip + 2 * len(judged) + 4 > width
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column(
        "domain", no_wrap=True, overflow="ellipsis", min_width=DOMAIN_MIN,
        max_width=32 if wide else 24,
    )  # fmt: skip
    table.add_column(_heading("national", NATIONAL in down), no_wrap=True)
    for name, role in judged:
        heading = _heading(name + ("*" if role == "observed" else ""), name in down)
        heading.overflow = "ellipsis"
        table.add_column(heading, no_wrap=True, max_width=None if wide else 13)
    table.add_column(f"last {strip} rounds", no_wrap=True, overflow="crop")
    shown = rows
    hidden: list[DomainRow] = []
    if budget is not None and len(rows) > budget:
        keep = [r for r in rows if r.interesting][: budget - 1]
        room = budget - 1 - len(keep)
        rest = [r for r in rows if not r.interesting]
        keep += rest[:room]
        kept = {r.domain for r in keep}
        shown = sorted(keep, key=DomainRow.key)
        hidden = [r for r in rows if r.domain not in kept]
    for r in shown:
        cells: list[RenderableType] = [Text(r.domain), _cell(r.national, snap.now, wide)]
        cells += [_cell(r.scopes.get(name), snap.now, wide, aged=not tight) for name, _ in judged]
        cells.append(_strip_text(r.strip))
        table.add_row(*cells)
    if snap.totals is not None:  # the domains that were never read are hidden too
        counts = Counter({str(v or "new"): n for v, n in snap.totals.items() if n})
        counts.subtract(str(r.verdict or "new") for r in shown)
        counts = +counts
    else:
        counts = Counter(str(r.verdict or "new") for r in hidden)
    below: list[RenderableType] = []
    if counts:  # a line of its own under the table: it never widens a column
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        summary = ", ".join(f"{n:,} {v}" for v, n in ordered)
        more = sum(counts.values())
        below.append(Text(f"+ {more:,} more: {summary}", style="dim", no_wrap=True,
                          overflow="ellipsis"))  # fmt: skip
    if not rows:
        below.append(Text("no domain measured yet", style="dim"))
    return Group(table, *below)


def _heading(name: str, down: bool) -> Text:
    """A scope's column heading; a resolver that is down says so (its column is held)."""
    if not down:
        return Text(name)
    return Text(f"{name} DOWN", style=STATES[ResolverState.DOWN])


def _cell(row: Row | None, now: datetime, wide: bool, aged: bool = True) -> Text:
    if row is None:
        return Text("")
    verdict = row["verdict"]
    if not verdict:
        text = Text("new", style="dim")
    else:
        v = Verdict(verdict)
        held = bool(row.get("held_since"))  # from before the outage: dim, marked ⏸
        word = str(v) if wide else PALETTE[v].short
        label = row.get("nxdomain")
        if label in NOTABLE_NXDOMAIN:  # the NXDOMAIN's look is the news: forged, rewritten
            word = f"{v} ({label})" if wide else NOTABLE_NXDOMAIN[label]
        text = Text(word, style="dim" if held else PALETTE[v].style)
        if held:
            text.append("⏸", style="dim")
        if row["since"] and aged:
            text.append(f" {age(row['since'], now)}", style="dim")
    if row["pending"]:
        text.append(f" →{PALETTE[Verdict(row['pending'])].short}?", style="italic yellow")
    return text


def _strip_text(strip: list[str | None]) -> Text:
    text = Text()
    for v in strip:
        if v is None:
            text.append(" ")
        elif v in _OFF_ROUND.values():
            text.append(v, style="dim")
        else:
            text.append(PALETTE[Verdict(v)].block, style=PALETTE[Verdict(v)].style)
    return text


def _recent_table(snap: Snapshot) -> Table:
    table = Table(title="recent transitions", title_justify="left", box=None,
                  header_style="bold", pad_edge=False)  # fmt: skip
    for col in ("when", "domain", "scope", "change"):
        table.add_column(col, no_wrap=True, overflow="ellipsis")
    for t in snap.transitions[:RECENT]:
        change = Text()
        change.append(t["from"] or "-", style=style_of(t["from"]))
        change.append(" → ")
        change.append(t["to"], style=style_of(t["to"]))
        domain = t["domain"] or "*"  # a resolver's own up or down: no domain
        table.add_row(f"{age(t['confirmed_at'], snap.now)} ago", domain, t["scope"], change)
    if not snap.transitions:
        table.add_row(Text("none yet", style="dim"), "", "", "")
    return table


def _health_table(snap: Snapshot, resolvers: list[tuple[str, str]]) -> Table:
    """Per resolver over the last hour: answer rate, latency, control failures, rewriting."""
    table = Table(title="resolvers, last hour", title_justify="left", box=None,
                  header_style="bold", pad_edge=False)  # fmt: skip
    for col in ("resolver", "role", "answered", "p50", "p95", "controls failed", "rewrites NX"):
        table.add_column(
            col, no_wrap=True, justify="left" if col in ("resolver", "role") else "right"
        )
    for name, role in resolvers:
        asked = answered = failed = rounds = 0
        rewrites = False
        hist: list[int] = []
        for r in snap.hour:
            h = (r.get("health") or {}).get(name)
            if not h:
                continue
            rounds += 1
            outcomes = h.get("outcomes", {})
            asked += sum(outcomes.values())
            answered += sum(outcomes.get(k, 0) for k in ("answer", "nodata", "nxdomain"))
            failed += 0 if h.get("up", h.get("controls_passed")) else 1
            rewrites = rewrites or bool(h.get("rewrites_nxdomain"))
            counts = h.get("latency_hist") or []
            hist = [a + b for a, b in zip(hist, counts, strict=True)] if hist else list(counts)
        rate = Text(f"{answered / asked:.0%}" if asked else "-",
                    style="" if not asked or answered / asked > 0.9 else "yellow")  # fmt: skip
        table.add_row(
            name,
            role,
            rate,
            _ms(histogram_quantile(hist, 0.5)),
            _ms(histogram_quantile(hist, 0.95)),
            Text(f"{failed}/{rounds}" if rounds else "-", style="yellow" if failed else ""),
            Text("yes", style="bold yellow") if rewrites else Text("no", style="dim"),
        )
    return table


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "slow" if value == float("inf") else f"≤{value:g} ms"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m"
