"""The collector's config (`nsdi-tracker collector --config collector.toml`): where it listens,
its PostgreSQL, the probes it accepts (each with its token and its network), and the fleet's
rules. Every error names the file and the key; a token never appears in one.

    listen = "127.0.0.1:8090"
    database_env = "NSDI_COLLECTOR_DSN"   # or database = "postgresql://..."
    [fleet]
    min_probes = 2        # a fleet-wide removal needs this many probes...
    min_networks = 2      # ...in this many distinct ASNs
    stale_intervals = 3   # a probe silent this many of its intervals is stale
    confirm = 2           # evaluations a new fleet verdict must hold before it is announced
    evaluate_every = 30   # seconds between evaluations (each only when something came in)
    [[sink]]              # where fleet events go: log (default), webhook, apprise
    type = "webhook"
    url = "https://example.org/hook"
    [[probe]]
    name = "msk-rostelecom"
    token_env = "NSDI_PROBE_MSK_ROSTELECOM"   # or token = "..."
    isp = "Rostelecom"
    asn = 12389
    region = "Moscow"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.core.signing import MIN_TOKEN
from nsdi_tracker.judge.fleet import SCOPE
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.config import Listen, parse_listen
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import DEFAULT_SINKS, FLEET, SinkKinds, SinkSpec, parse_sinks

FLEET_ONLY: Final = frozenset({SCOPE})

_TOP = {"listen", "database", "database_env", "max_body", "fleet", "probe", "sink"}
_FLEET = {"min_probes", "min_networks", "stale_intervals", "confirm", "evaluate_every"}
_PROBE = {"name", "token", "token_env", "isp", "asn", "region"}


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    name: str
    token: str = field(repr=False)
    isp: str | None = None
    asn: int | None = None
    region: str | None = None

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "isp": self.isp, "asn": self.asn, "region": self.region}


@dataclass(frozen=True, slots=True)
class FleetRules:
    min_probes: int = 2
    min_networks: int = 2
    stale_intervals: float = 3.0
    confirm: int = 2
    evaluate_every: float = 30.0


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    path: Path
    listen: Listen
    database: str = field(repr=False)  # a DSN may hold a password
    probes: Mapping[str, ProbeSpec]
    rules: FleetRules = FleetRules()
    sinks: tuple[SinkSpec, ...] = DEFAULT_SINKS
    max_body: int = 32 * 1024 * 1024  # bytes: a round of 100,000 names on 3 resolvers: 9.6 MB


def load_collector(path: Path, sink_kinds: SinkKinds) -> CollectorConfig:
    """Read and check collector.toml; `sink_kinds` as for a probe's config (the delivery
    floor's registry)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {problem}")

    keys.known(data, _TOP, "", fail)
    probes = [_probe(item, i, fail) for i, item in enumerate(_tables(data, "probe", fail))]
    names = [p.name for p in probes]
    if not probes:
        raise fail("probe", "at least one [[probe]] is required")
    if len(set(names)) != len(names):
        raise fail(
            "probe", f"two probes are named {sorted(n for n in names if names.count(n) > 1)[0]!r}"
        )
    return CollectorConfig(
        path=path,
        listen=parse_listen(data.get("listen", "127.0.0.1:8090"), "listen", fail),
        database=_secret(data, "database", fail),
        probes={p.name: p for p in probes},
        rules=_rules(data.get("fleet", {}), fail),
        sinks=_sinks(data, path.parent, fail, sink_kinds),
        max_body=keys.integer(
            data.get("max_body", 32 * 1024 * 1024), "max_body", fail, 1024, 256 * 1024 * 1024
        ),
    )


def _sinks(
    data: Mapping[str, Any], base: Path, fail: Fail, kinds: SinkKinds
) -> tuple[SinkSpec, ...]:
    """The `[[sink]]` tables of a probe's config, for fleet events: every one hears scope
    `fleet` (there is no other here), so `scopes` is not a key; a `fleet` sink is a probe's."""
    if "sink" not in data:
        return tuple(replace(s, scopes=FLEET_ONLY) for s in DEFAULT_SINKS)
    raw = _tables(data, "sink", fail)
    for i, item in enumerate(raw):
        if "scopes" in item:
            raise fail(f"sink[{i}].scopes", "a collector's sinks hear fleet events only")
        if item.get("type") == FLEET:
            raise fail(f"sink[{i}].type", "a fleet sink belongs in a probe's config")
    sinks = parse_sinks(raw, base, fail, kinds)
    return tuple(replace(s, scopes=FLEET_ONLY) for s in sinks)


def _tables(data: Mapping[str, Any], key: str, fail: Fail) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise fail(key, f"must be an array of tables ([[{key}]])")
    return items


def _probe(item: Mapping[str, Any], i: int, fail: Fail) -> ProbeSpec:
    raw = item.get("name")
    where = f"probe[{i}]" + (f" ({raw})" if isinstance(raw, str) else "")
    keys.known(item, _PROBE, where, fail)
    if not isinstance(raw, str):
        raise fail(f"{where}.name", "missing (a name of a-z, 0-9 and -)")
    name = keys.name(raw, f"{where}.name", fail)
    token = _secret(item, "token", fail, where)
    if len(token) < MIN_TOKEN:
        raise fail(f"{where}.token", f"must be at least {MIN_TOKEN} characters")
    asn = item.get("asn")
    return ProbeSpec(
        name, token, _text(item, "isp", where, fail),
        None if asn is None else keys.integer(asn, f"{where}.asn", fail, 1, 4_294_967_295),
        _text(item, "region", where, fail),
    )  # fmt: skip


def _text(item: Mapping[str, Any], key: str, where: str, fail: Fail) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{where}.{key}", "must be a string")
    return value


def _secret(item: Mapping[str, Any], key: str, fail: Fail, where: str = "") -> str:
    value = keys.secret(item, key, where, fail, required=True)
    assert value is not None
    return value


def _rules(fleet: object, fail: Fail) -> FleetRules:
    if not isinstance(fleet, dict):
        raise fail("fleet", "must be a table")
    keys.known(fleet, _FLEET, "fleet", fail)
    return FleetRules(
        keys.integer(fleet.get("min_probes", 2), "fleet.min_probes", fail, 1, 10_000),
        keys.integer(fleet.get("min_networks", 2), "fleet.min_networks", fail, 1, 10_000),
        keys.number(fleet.get("stale_intervals", 3), "fleet.stale_intervals", fail, 1, 1000),
        keys.integer(fleet.get("confirm", 2), "fleet.confirm", fail, 1, 100),
        keys.number(fleet.get("evaluate_every", 30), "fleet.evaluate_every", fail, 0.1, 3600),
    )
