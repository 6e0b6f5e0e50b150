"""The page's templates (Jinja2, escaping everything by default) and its stylesheet, both
shipped inside the package: the page fetches nothing from another site."""

from __future__ import annotations

import functools
from datetime import datetime
from importlib.resources import files
from typing import Any

import jinja2

from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.core.model import ResolverState, Verdict
from nsdi_tracker.ui.palette import PALETTE

# a resolver's up and down look like present and removed, as in the dashboard (palette.STATES)
_STATE_COLORS = {
    ResolverState.UP: PALETTE[Verdict.PRESENT].color,
    ResolverState.DOWN: PALETTE[Verdict.REMOVED].color,
}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nsdi_tracker.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def when(value: str | datetime | None) -> str:
    """A moment as the page prints it: 2026-02-10 12:05:09 UTC."""
    if value is None:
        return ""
    moment = parse_iso(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@functools.cache
def stylesheet() -> bytes:
    """The shipped stylesheet, then a rule per verdict and resolver state in the palette's
    colours (the dashboard's), so the two never drift apart."""
    base = files("nsdi_tracker.web").joinpath("static/style.css").read_text("utf-8")
    rules = [f".v-{verdict} {{ --c: {look.color}; }}" for verdict, look in PALETTE.items()] + [
        f".v-{state} {{ --c: {color}; }}" for state, color in _STATE_COLORS.items()
    ]
    return (base + "\n" + "\n".join(rules) + "\n").encode("utf-8")
