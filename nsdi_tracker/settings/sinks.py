"""The `[[sink]]` tables: where change events go.

The keys every sink has (type, name, events, scopes and, where its kind takes them, the retry
keys) are read here; the keys of one kind of sink are read by that kind (`delivery.sinks`),
which the caller hands in as a SinkKind registry. This floor does not know the kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from nsdi_tracker.core.model import NATIONAL, EventType
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.resolvers import NAME

RETRY_KEYS: Final = frozenset({"retry_initial", "retry_max", "give_up_after"})
_COMMON = frozenset({"type", "name", "events", "scopes"})
# By default a sink hears about the national headline's changes, not baselines.
DEFAULT_EVENTS = frozenset(t for t in EventType if t is not EventType.BASELINE)
DEFAULT_SCOPES = frozenset({NATIONAL})


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """What a kind of sink read from its own keys; each kind extends it."""

    timeout: float = 10.0  # seconds one send may take

    def secrets(self) -> tuple[str, ...]:
        """The URLs that must never be logged or stored whole (they may carry tokens)."""
        return ()


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One sink: its kind, which events it takes, how it retries, and its kind's options."""

    name: str
    type: str  # a registered kind: log | webhook | apprise
    events: frozenset[str] = DEFAULT_EVENTS
    scopes: frozenset[str] = DEFAULT_SCOPES  # "*" means every scope
    retry_initial: float = 5.0  # seconds before the first retry
    retry_max: float = 600.0  # backoff ceiling
    give_up_after: float = 86_400.0  # a delivery older than this is marked failed
    options: SinkOptions = SinkOptions()

    @property
    def timeout(self) -> float:
        return self.options.timeout

    def wants(self, event_type: str, scope: str) -> bool:
        return event_type in self.events and ("*" in self.scopes or scope in self.scopes)


DEFAULT_SINKS = (SinkSpec(name="log", type="log"),)  # events as JSON lines on stdout


class SinkKind(Protocol):
    """A kind of sink as the config sees it: the keys it takes beyond the common ones, and how
    it reads them (every error through `fail`, naming the key). The table it is given carries
    the sink's name under `name`, given or not."""

    @property
    def keys(self) -> frozenset[str]: ...

    def options(self, item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> SinkOptions: ...


SinkKinds = Mapping[str, SinkKind]


def parse_sinks(raw: object, base: Path, fail: Fail, kinds: SinkKinds) -> tuple[SinkSpec, ...]:
    if not isinstance(raw, list):
        raise fail("sink", "must be [[sink]] tables")
    sinks: list[SinkSpec] = []
    for i, item in enumerate(raw):
        key = f"sink[{i}]"
        if not isinstance(item, dict):
            raise fail(key, "must be a table")
        kind = item.get("type")
        if kind == FLEET:
            raise fail(f"{key}.type", "a fleet's collector is set in the [fleet] table")
        if not isinstance(kind, str) or kind not in kinds:
            raise fail(f"{key}.type", f"{kind!r} is not one of {' | '.join(kinds)}")
        name = item.get("name", kind if i == 0 else f"{kind}-{i}")
        if not isinstance(name, str) or not NAME.match(name):
            raise fail(
                f"{key}.name", f"{name!r} must match [a-z0-9-], start with a letter or digit"
            )
        if any(s.name == name for s in sinks):
            raise fail(f"{key}.name", f"duplicate sink name {name!r}")
        keys.known(item, kinds[kind].keys | _COMMON, key, fail, f"for a {kind} sink")
        sinks.append(_sink(item, key, name, kind, base, fail, kinds[kind]))
    return tuple(sinks)


FLEET: Final = "fleet"  # the sink kind, and the sink's name, of the [fleet] table
FLEET_KEEPS: Final = 7 * 86_400.0  # seconds the fleet sink retries before it gives up


def parse_fleet(raw: object, base: Path, fail: Fail, kinds: SinkKinds) -> SinkSpec:
    """The `[fleet]` table: a sink of kind `fleet`, named `fleet`, that hears every change on
    every scope (the collector keeps the probes' change logs) and the round summaries, but no
    baselines: a first round of a big watchlist would be a submission per name and scope,
    and the round's summary already carries every verdict."""
    if not isinstance(raw, dict):
        raise fail(FLEET, 'must be a table: [fleet] collector = "https://..."')
    how = kinds[FLEET]
    keys.known(raw, how.keys, FLEET, fail)
    # A probe cut off from its collector for days still catches up: it keeps a week.
    item = {"give_up_after": FLEET_KEEPS, **raw, "events": sorted(DEFAULT_EVENTS), "scopes": ["*"]}
    return _sink(item, FLEET, FLEET, FLEET, base, fail, how)


def _sink(
    item: Mapping[str, Any], key: str, name: str, kind: str, base: Path, fail: Fail, how: SinkKind
) -> SinkSpec:
    events = frozenset(
        keys.str_list(item.get("events", sorted(DEFAULT_EVENTS)), f"{key}.events", fail)
    )
    for ev in sorted(events):
        keys.enum(EventType, ev, f"{key}.events", fail)
    scopes = frozenset(
        keys.str_list(item.get("scopes", sorted(DEFAULT_SCOPES)), f"{key}.scopes", fail)
    )
    retry: dict[str, float] = {}
    for k in ("retry_initial", "retry_max"):
        if k in item:
            retry[k] = keys.number(item[k], f"{key}.{k}", fail, 0.01, 86_400)
    if "give_up_after" in item:
        retry["give_up_after"] = keys.number(
            item["give_up_after"], f"{key}.give_up_after", fail, 1, 365 * 86_400
        )
    return SinkSpec(
        name=name,
        type=kind,
        events=events,
        scopes=scopes,
        options=how.options({**item, "name": name}, key, base, fail),
        **retry,
    )
