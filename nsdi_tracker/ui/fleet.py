"""`nsdi-tracker fleet status`: the fleet in a terminal, a domain per row and a probe per
column, the probes grouped by ISP, each cell the probe's national verdict in the palette's
colours, and the fleet's verdict first; removals and filtering come first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from nsdi_tracker.core.model import Verdict
from nsdi_tracker.judge.fleet import FleetVerdict
from nsdi_tracker.ui.palette import PALETTE, style_of

FLEET_STYLES: Mapping[FleetVerdict, str] = {
    FleetVerdict.REMOVED: "bold red",
    FleetVerdict.FILTERED: "bold magenta",
    FleetVerdict.PENDING: "yellow",
    FleetVerdict.PRESENT: "green",
    FleetVerdict.UNKNOWN: "dim",
}
ORDER = list(FLEET_STYLES)  # the rows' order: what a reader must see first comes first


def rows_first(domains: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The `limit` domains a screen shows: by fleet verdict in ORDER, then by name."""
    return sorted(domains, key=lambda d: (ORDER.index(FleetVerdict(d["verdict"])), d["domain"]))[
        :limit
    ]


def render(
    status: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]], total: int
) -> RenderableType:
    """The matrix of the domains in `details` (each /api/fleet/domains/{name}) under the
    fleet's rules and probes (from /api/fleet/status)."""
    probes = sorted(status["probes"], key=lambda p: (p.get("isp") or "~", p["name"]))
    table = Table(
        header_style="bold", title_justify="left", title="fleet verdicts", box=box.SIMPLE_HEAD
    )
    table.add_column("domain", no_wrap=True, min_width=max((len(n) for n in details), default=6))
    table.add_column("fleet", no_wrap=True, min_width=8)
    for p in probes:
        network = p.get("isp") or (f"AS{p['asn']}" if p.get("asn") else "")
        head = f"{network}\n{p['name']}" + ("*" if p["stale"] else "")
        table.add_column(head, no_wrap=True, min_width=7, style="dim" if p["stale"] else "")
    for name, d in details.items():
        seen = {s["probe"]: s for s in d["probes"]}
        verdict = FleetVerdict(d["verdict"])
        fleet = Text(str(verdict), style=FLEET_STYLES[verdict])
        if verdict in (FleetVerdict.REMOVED, FleetVerdict.FILTERED) and d["blocked_networks"]:
            fleet.append("\n" + "\n".join(d["blocked_networks"]), style="dim")
        cells = []
        for p in probes:
            s = seen.get(p["name"])
            national = s["national"] if s else None
            word = PALETTE[Verdict(national)].short if national else "-"
            cells.append(Text(word, style="dim" if p["stale"] else style_of(national)))
        table.add_row(name, fleet, *cells)
    rules = status["rules"]
    stale = sum(p["stale"] for p in probes)
    lines: list[RenderableType] = [
        Text(
            f"{len(probes)} probes ({stale} stale, marked *: not counted); a fleet-wide "
            f"removal needs {rules['min_probes']} probes in {rules['min_networks']} networks",
        ),
        table,
    ]
    if total > len(details):
        lines.append(Text(f"+ {total - len(details)} more domains", style="dim"))
    return Group(*lines)
