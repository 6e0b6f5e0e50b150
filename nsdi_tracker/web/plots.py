"""The page's plots, drawn on the server as SVG (no script, nothing fetched): a domain's
timeline (the national headline and each resolver, coloured by verdict, hatched where nothing
was measured) and line plots of the resolvers' health over recent rounds.

Pure: rows in, markup out. Every text that reaches the markup is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import NATIONAL, ResolverState, Verdict
from nsdi_tracker.ui.palette import PALETTE

WIDTH = 960
LABEL_W = 150
LANE_H = 24
AXIS_H = 26
GAP_COLOR = "#ffffff"
# resolvers' lines: distinct for colour-blind readers too (Okabe and Ito's palette)
LINE_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000")


@dataclass
class Lane:
    """One row of a timeline: verdict spans and the gaps laid over them."""

    name: str
    spans: list[tuple[datetime, datetime, str]] = field(default_factory=list)
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)


def lanes(
    history: Sequence[Mapping[str, Any]],
    scopes: Sequence[str],
    round_gaps: Iterable[tuple[str, str]],
    end: datetime,
) -> tuple[list[Lane], datetime]:
    """A domain's lanes from its transitions (`history`, oldest first, with the resolvers'
    own), one per scope in `scopes` order (national first), and where the plot starts: the
    domain's first verdict. A verdict is drawn from when it was first seen; a resolver's
    down spans and the spans without a measured round (`round_gaps`) are its gaps."""
    by_scope: dict[str, Lane] = {s: Lane(s) for s in scopes}
    opened: dict[str, tuple[datetime, str]] = {}
    down: dict[str, datetime] = {}
    start = end
    for row in history:
        scope, at = row["scope"], parse_iso(row["first_seen"] or row["confirmed_at"])
        lane = by_scope.get(scope)
        if lane is None:
            continue
        if row["domain"] is None:  # the resolver's (or every national one's) own health
            if row["to"] == ResolverState.DOWN:
                down.setdefault(scope, at)
            elif row["to"] == ResolverState.UP and scope in down:
                lane.gaps.append((down.pop(scope), at))
            continue
        start = min(start, at)
        if scope in opened:
            since, verdict = opened[scope]
            at = max(at, since)
            lane.spans.append((since, at, verdict))
        opened[scope] = (at, row["to"])
    for scope, (since, verdict) in opened.items():
        by_scope[scope].spans.append((since, end, verdict))
    for scope, since in down.items():
        by_scope[scope].gaps.append((since, end))
    shared = [(parse_iso(a), parse_iso(b)) for a, b in round_gaps]
    for lane in by_scope.values():
        lane.gaps.extend(shared)
    return list(by_scope.values()), start


def timeline(
    rows: Sequence[Lane],
    start: datetime,
    end: datetime,
    label: Callable[[str], str],
    verdict_word: Callable[[str], str],
) -> Markup:
    """The lanes as one SVG: a row per lane, a span per verdict (class `v-<verdict>`, with a
    title for a pointer), hatching over gaps, dates along the bottom."""
    if end <= start:
        start = end - timedelta(hours=1)
    height = len(rows) * LANE_H + AXIS_H
    x = _scale(start, end, LABEL_W, WIDTH - 10)
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">',
        '<defs><pattern id="gap" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>',
    ]
    for i, lane in enumerate(rows):
        y = i * LANE_H
        out.append(
            f'<text x="{LABEL_W - 8}" y="{y + LANE_H * 0.68:.1f}" text-anchor="end" '
            f'class="lane">{escape(label(lane.name))}</text>'
        )
        out.append(
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{WIDTH - 10 - LABEL_W}" '
            f'height="{LANE_H - 6}" fill="#f4f4f4"/>'
        )
        for a, b, verdict in lane.spans:
            x0, x1 = x(a), max(x(b), x(a) + 1.5)
            color = _color(verdict)
            title = f"{verdict_word(verdict)}: {_stamp(a)} – {_stamp(b)}"
            out.append(
                f'<rect class="span v-{escape(verdict)}" data-verdict="{escape(verdict)}" '
                f'x="{x0:.1f}" y="{y + 3}" width="{x1 - x0:.1f}" height="{LANE_H - 6}" '
                f'fill="{color}"><title>{escape(title)}</title></rect>'
            )
        for a, b in lane.gaps:
            x0, x1 = x(max(a, start)), x(min(b, end))
            if x1 - x0 >= 0.5:
                out.append(
                    f'<rect class="gap" x="{x0:.1f}" y="{y + 3}" width="{x1 - x0:.1f}" '
                    f'height="{LANE_H - 6}" fill="url(#gap)" opacity="0.85">'
                    f"<title>{escape(_stamp(a))} – {escape(_stamp(b))}</title></rect>"
                )
    out.extend(_axis(start, end, x, len(rows) * LANE_H))
    out.append("</svg>")
    return Markup("".join(out))


def line_plot(
    series: Mapping[str, Sequence[tuple[datetime, float | None]]],
    start: datetime,
    end: datetime,
    title: str,
    *,
    top: float | None = None,
) -> Markup:
    """One line per name over time (None breaks a line), a y axis from 0 to `top` (or the
    highest value), the names in their colours as the legend."""
    height, plot_h, left = 200, 150, 60
    values = [v for points in series.values() for _, v in points if v is not None]
    high = top if top is not None else max(values, default=1.0) or 1.0
    if end <= start:
        start = end - timedelta(hours=1)
    x = _scale(start, end, left, WIDTH - 10)

    def y(v: float) -> float:
        return 20 + plot_h * (1 - min(v, high) / high)

    out = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {height + 20}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">',
        f'<text x="{left}" y="13" class="title">{escape(title)}</text>',
        f'<rect x="{left}" y="20" width="{WIDTH - 10 - left}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ddd"/>',
    ]
    for frac in (0, 0.5, 1):
        v = high * frac
        out.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">'
            f"{_short(v)}</text>"
        )
    for i, (name, points) in enumerate(series.items()):
        color = LINE_COLORS[i % len(LINE_COLORS)]
        for run in _runs(points):
            if len(run) == 1:
                t, v = run[0]
                out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{color}"/>')
            else:
                path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
                out.append(
                    f'<polyline class="line" data-name="{escape(name)}" points="{path}" '
                    f'fill="none" stroke="{color}" stroke-width="1.8"/>'
                )
        lx = left + 10 + (i % 6) * 150
        ly = height + 8 + (i // 6) * 14
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" class="tick">{escape(name)}</text>')
    out.extend(_axis(start, end, x, 20 + plot_h))
    out.append("</svg>")
    return Markup("".join(out))


def _runs(
    points: Sequence[tuple[datetime, float | None]],
) -> list[list[tuple[datetime, float]]]:
    runs: list[list[tuple[datetime, float]]] = [[]]
    for t, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, v))
    return [r for r in runs if r]


def _scale(start: datetime, end: datetime, low: float, high: float) -> Callable[[datetime], float]:
    total = (end - start).total_seconds() or 1.0

    def x(t: datetime) -> float:
        frac = (t - start).total_seconds() / total
        return low + (high - low) * min(max(frac, 0.0), 1.0)

    return x


_STEPS = (
    1,
    2,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    3 * 3600,
    6 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
    365 * 86400,
)


def _axis(start: datetime, end: datetime, x: Callable[[datetime], float], y: float) -> list[str]:
    """Ticks at a round step that gives at most seven labels."""
    total = (end - start).total_seconds()
    step = next((s for s in _STEPS if total / s <= 7), _STEPS[-1])
    first = datetime.fromtimestamp((int(start.timestamp()) // step + 1) * step, tz=start.tzinfo)
    fmt = "%Y-%m-%d" if step >= 86400 else "%m-%d %H:%M" if step >= 60 else "%H:%M:%S"
    out = [f'<line x1="{x(start):.1f}" y1="{y}" x2="{x(end):.1f}" y2="{y}" stroke="#999"/>']
    t = first
    while t < end:
        px = x(t)
        out.append(f'<line x1="{px:.1f}" y1="{y}" x2="{px:.1f}" y2="{y + 4}" stroke="#999"/>')
        out.append(
            f'<text x="{px:.1f}" y="{y + 16}" text-anchor="middle" class="tick">'
            f"{t.strftime(fmt)}</text>"
        )
        t += timedelta(seconds=step)
    return out


def _color(verdict: str) -> str:
    try:
        return PALETTE[Verdict(verdict)].color
    except ValueError:
        return "#bdbdbd"


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _short(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def scope_order(scopes: Iterable[str]) -> list[str]:
    """National first, then the resolvers by name."""
    return sorted(set(scopes), key=lambda s: (s != NATIONAL, s))
