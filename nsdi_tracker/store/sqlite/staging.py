"""A batch's rows for a round's staging tables, in the tables' column order, as the database
holds them (text, JSON text, ISO times). Compiled where a compiler is at hand: a first sweep
stages several rows a name, millions in all.

Values go in as SQLite's module binds them fastest: enum members as their text (`_value_`),
and an empty text for a missing one (the statements that take these rows turn it back into
NULL with NULLIF): anything but an exact str, int or float, None included, first goes
through the module's adapter look-ups, which cost several times the binding itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import orjson

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.evidence import stored_evidence
from nsdi_tracker.core.model import Observation, Verdict
from nsdi_tracker.judge.confirm import Track
from nsdi_tracker.store.records import TrackKey, TransitionRecord

Row = tuple[Any, ...]


NULL: Final = ""  # a missing value: NULLIF(?, '') in the statements
# the placeholders for track_columns
TRACK_VALUES: Final = "NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), ?, NULLIF(?, '')"


def _text(value: Any) -> str:
    """An enum member's text."""
    return NULL if value is None else str(value._value_)


def _time(value: datetime | None) -> str:
    return NULL if value is None else iso(value)


def json_text(value: Any) -> str:
    """Compact JSON (as json.dumps(ensure_ascii=False, separators=(",", ":")) writes it)."""
    return orjson.dumps(value).decode()


def track_columns(t: Track[Any]) -> Row:
    """(verdict, since, candidate, candidate_count, candidate_since)."""
    return (_text(t.verdict), _time(t.since), _text(t.candidate), t.count, _time(t.candidate_since))


def state_rows(tracks: Mapping[TrackKey, Track[Verdict]]) -> list[Row]:
    """(domain, scope, and the track's columns)."""
    return [(domain, scope, *track_columns(t)) for (domain, scope), t in tracks.items()]


def transition_row(tr: TransitionRecord) -> Row:
    """(event_id, domain, scope, type, from, to, first_seen, confirmed_at, rounds, and the
    summary's columns, event: empty for a domain's baseline, see rows.EVENT)."""
    change = tr.change
    s = tr.summary
    return (
        tr.event_id, tr.domain, tr.scope, _text(change.type), _text(change.old),
        _text(change.new), iso(change.first_seen), iso(change.confirmed_at), change.rounds,
        s.reason, s.rcode, s.nxdomain, json_text(s.flags), json_text(s.addresses), s.authority,
        s.reference_consensus, json_text(s.reference_addresses),
        NULL if tr.event is None else json_text(tr.event),
    )  # fmt: skip


def transition_rows(transitions: Iterable[TransitionRecord]) -> list[Row]:
    return [transition_row(tr) for tr in transitions]


def delivery_rows(transitions: Iterable[TransitionRecord]) -> list[tuple[str, str]]:
    """(event_id, sink): one a sink that takes the event."""
    return [(tr.event_id, sink) for tr in transitions for sink in tr.sinks]


def observation_rows(observations: Iterable[tuple[Observation, str]]) -> list[Row]:
    """(domain, resolver, qtype, outcome, rcode, addresses, fingerprint, stored evidence)."""
    return [
        (
            obs.qname, obs.resolver, obs.qtype, str(obs.outcome._value_), obs.rcode or NULL,
            json_text(obs.addresses), fp, json_text(stored_evidence(obs)),
        )
        for obs, fp in observations
    ]  # fmt: skip
