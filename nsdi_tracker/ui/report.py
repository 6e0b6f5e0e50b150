"""A round as JSON (for scripts) and as a rich table (for people)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from nsdi_tracker.core.evidence import evidence
from nsdi_tracker.core.model import Observation, Role, Verdict
from nsdi_tracker.rounds.events import health_json
from nsdi_tracker.rounds.measure import RoundReport
from nsdi_tracker.rounds.stream import DomainResult
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.ui.palette import PALETTE

JSON_VERSION = 1


def _by_type(observations: tuple[Observation, ...]) -> dict[str, Any]:
    return {o.qtype: evidence(o) for o in observations}


def domain_json(result: DomainResult, roles: dict[str, Role]) -> dict[str, Any]:
    ref = result.reference
    return {
        "domain": result.entry.domain,
        "label": result.entry.label,
        "category": result.entry.category,
        "national": str(result.national),
        "resolvers": {
            name: {
                "role": str(roles[name]),
                "verdict": str(j.verdict),
                "reason": j.reason,
                "nxdomain": str(j.nx_label) if j.nx_label else None,
                **_by_type(result.observations[name]),
            }
            for name, j in result.judgements.items()
        },
        "reference": {
            "consensus": str(ref.consensus),
            "addresses": sorted(ref.addresses),
            "answered": list(ref.answered),
            "ignored": list(ref.ignored),
            "resolvers": {
                name: _by_type(obs)
                for name, obs in result.observations.items()
                if roles[name] is Role.REFERENCE
            },
        },
    }


def round_json(report: RoundReport) -> dict[str, Any]:
    roles = {r.name: r.role for r in report.info.resolvers}
    return {
        "version": JSON_VERSION,
        "started": report.info.started.isoformat(timespec="milliseconds"),
        "finished": report.info.finished.isoformat(timespec="milliseconds"),
        "connectivity": report.info.connectivity,
        "negative_control": report.info.negative_name,
        "summary": dict(Counter(str(d.national) for d in report.domains)),
        "resolvers": [
            {
                "name": r.name,
                "role": str(r.role),
                "transport": str(r.transport),
                "address": r.address,
                **health_json(report.info.health[r.name], report.info.counters[r.name]),
                "controls": _by_name(report.info.controls[r.name]),
                "negative_control": _by_name(report.info.negative[r.name]),
            }
            for r in report.info.resolvers
        ],
        "domains": [domain_json(d, roles) for d in report.domains],
    }


def _by_name(observations: tuple[Observation, ...]) -> dict[str, Any]:
    return {o.qname: evidence(o) for o in observations}


def verdict_text(verdict: Verdict, detail: str | None = None) -> Text:
    text = Text(str(verdict), style=PALETTE[verdict].style)
    if detail:
        text.append(f" ({detail})", style="dim")
    return text


def render(report: RoundReport) -> Group:
    """The domains-by-resolvers table, then resolver health and a one-line summary."""
    judged = [r for r in report.info.resolvers if r.role is not Role.REFERENCE]
    parts: list[Any] = [_verdicts(report, judged), _summary(report)]
    if any(r.role is Role.OBSERVED for r in judged):
        legend = "* observed: judged against the reference, not part of the headline"
        parts.append(Text(legend, style="dim"))
    parts.append(_health(report))
    return Group(*parts)


def _verdicts(report: RoundReport, judged: list[ResolverSpec]) -> Table:
    table = Table(
        title=f"nsdi-tracker check · {report.info.started:%Y-%m-%d %H:%M:%S} UTC",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("domain", no_wrap=True)
    table.add_column("label", overflow="ellipsis", max_width=22)
    table.add_column("national", no_wrap=True)
    for r in judged:
        table.add_column(r.name if r.role is Role.NATIONAL else f"{r.name}*", no_wrap=True)
    table.add_column("reference", no_wrap=True)
    for d in report.domains:
        cells = [verdict_text(d.judgements[r.name].verdict, _detail(d, r.name)) for r in judged]
        table.add_row(
            d.entry.domain,
            d.entry.label or "",
            verdict_text(d.national),
            *cells,
            Text(
                str(d.reference.consensus), style="dim" if d.reference.consensus != "exists" else ""
            ),
        )
    return table


def _health(report: RoundReport) -> Table:
    health = Table(title="resolvers", title_justify="left", header_style="bold")
    for col in ("resolver", "role", "transport", "controls", "queries", "ignored", "failures"):
        health.add_column(
            col, justify="left" if col in {"resolver", "role", "transport"} else "right"
        )
    health.add_column("notes")
    for r in report.info.resolvers:
        h, c = report.info.health[r.name], report.info.counters[r.name]
        failures = sum(v for k, v in c.by_outcome.items() if not k.usable)
        notes = []
        if not h.up:
            notes.append("[yellow]down: names not asked[/]")
        if h.rewrites_nxdomain:
            notes.append("[magenta]rewrites NXDOMAIN[/]")
        health.add_row(
            r.name,
            str(r.role),
            str(r.transport),
            f"{h.controls_ok}/{h.controls_total}",
            str(c.queries),
            str(c.ignored),
            str(failures),
            ", ".join(notes),
        )
    return health


def _summary(report: RoundReport) -> Text:
    counts = Counter(d.national for d in report.domains)
    summary = Text("national: ")
    for i, (verdict, n) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        if i:
            summary.append(", ")
        summary.append(f"{n} {verdict}", style=PALETTE[verdict].style)
    if not report.info.connectivity:
        summary.append("  · every reference failed the controls: results unknown", style="yellow")
    secs = (report.info.finished - report.info.started).total_seconds()
    summary.append(f"  · {len(report.domains)} domains in {secs:.1f} s", style="dim")
    return summary


def _detail(d: DomainResult, name: str) -> str | None:
    j = d.judgements[name]
    if j.verdict is Verdict.REMOVED and j.nx_label is not None:
        return str(j.nx_label)
    return None
