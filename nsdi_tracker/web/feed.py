"""The Atom feed (RFC 4287) of confirmed transitions, written by feedgen: one entry per
transition, its id the event's stable UUID (urn:uuid:...), its link the transition's
permanent page, so a feed reader shows each change once however often it polls."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

from nsdi_tracker import __version__
from nsdi_tracker.core.clock import parse_iso
from nsdi_tracker.web.evidence import evidence_words
from nsdi_tracker.web.i18n import Words

_FEED_NS = uuid.UUID("6f6e7364-692d-7472-6163-6b6572000002")


def feed_id(selection: str) -> str:
    """A feed's own id: the same selection (canonical filter text) always has the same one."""
    return f"urn:uuid:{uuid.uuid5(_FEED_NS, selection)}"


def entry_title(row: Mapping[str, Any], w: Words) -> str:
    what = w.event(row["type"])
    if row["domain"] is None:
        return w("transition.resolver", scope=row["scope"], type=what)
    return w("transition.title", domain=row["domain"], type=what, scope=row["scope"])


def atom(
    rows: Sequence[Mapping[str, Any]],
    *,
    w: Words,
    selection: str,
    self_url: str,
    site_url: str,
    permalink: Callable[[str], str],
    now: datetime,
) -> bytes:
    """The feed of `rows` (newest first) as UTF-8 XML."""
    fg = FeedGenerator()
    fg.id(feed_id(selection))
    fg.title(w("feed.title"))
    fg.subtitle(w("feed.subtitle"))
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=site_url, rel="alternate", type="text/html")
    fg.author({"name": "nsdi-tracker"})
    fg.generator("nsdi-tracker", version=__version__)
    fg.language(w.lang)
    fg.updated(parse_iso(rows[0]["confirmed_at"]) if rows else now)
    for row in rows:
        fe = fg.add_entry(order="append")
        fe.id(f"urn:uuid:{row['event_id']}")
        fe.title(entry_title(row, w))
        moment = parse_iso(row["confirmed_at"])
        fe.updated(moment)
        fe.published(moment)
        fe.link(href=permalink(row["event_id"]), rel="alternate", type="text/html")
        fe.category(term=row["type"], label=w.event(row["type"]))
        lines = [
            w("transition.confirmed", when=row["confirmed_at"], rounds=row["rounds"],
              first=row["first_seen"]),
            f"{w.verdict(row['from'])} → {w.verdict(row['to'])}",
            *evidence_words(row, w),
        ]  # fmt: skip
        fe.content("\n".join(lines), type="text")
    data: bytes = fg.atom_str(pretty=True)
    return data
