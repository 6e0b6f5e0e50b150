"""Configuration: the TOML file, validated into frozen dataclasses before any query is sent."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.core.model import ResolverState, Role, Verdict
from nsdi_tracker.judge.confirm import DEFAULT_CONFIRM, Policy
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.resolvers import ResolverSpec, parse_resolvers
from nsdi_tracker.settings.sinks import (
    DEFAULT_SINKS,
    SinkKinds,
    SinkSpec,
    parse_fleet,
    parse_sinks,
)
from nsdi_tracker.settings.watchlist import load_watchlist

ENV_CONFIG = "NSDI_TRACKER_CONFIG"
ENV_DB = "NSDI_TRACKER_DB"
ENV_LISTEN = "NSDI_TRACKER_LISTEN"
DEFAULT_DB = Path("db/nsdi-tracker.db")  # relative to the working directory
CONFIG_NAME = "nsdi-tracker.toml"
CONTROLS_WATCHLIST = "watchlists/controls.toml"

_TOP_KEYS = {
    "resolver", "watchlists", "controls", "sinkholes", "negative_control_zone",
    "database", "confirm", "retain_days", "raw_dir", "sink",
    "interval", "jitter", "round_timeout", "grace", "http", "fleet",
}  # fmt: skip
_HTTP_KEYS = {"listen", "show_paths", "base_path"}
DEFAULT_INTERVAL = 300.0
DEFAULT_GRACE = 20.0
DEFAULT_LISTEN = "127.0.0.1:8080"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the daemon measures: every `interval` seconds plus up to `jitter`, each round cut
    off after `timeout`; on SIGTERM a running round gets `grace` seconds to finish."""

    interval: float = DEFAULT_INTERVAL
    jitter: float = 30.0  # a tenth of the interval, at most 30 s
    timeout: float = 216.0  # 80% of what the jitter leaves of the interval
    grace: float = DEFAULT_GRACE


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the status server listens (port 0: any free port, logged at start)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    resolvers: tuple[ResolverSpec, ...]
    watchlists: tuple[Path, ...]
    controls: tuple[str, ...]
    sinkholes: tuple[IPNetwork, ...] = ()
    negative_control_zone: str = "example.com"
    database: Path | None = None  # None: $NSDI_TRACKER_DB or db/nsdi-tracker.db
    confirm: Policy = field(default_factory=Policy)
    retain_days: int = 90  # 0 keeps raw observations forever
    raw_dir: Path | None = None
    sinks: tuple[SinkSpec, ...] = DEFAULT_SINKS
    schedule: Schedule = field(default_factory=Schedule)
    listen: Listen | None = None  # None: no status server
    show_paths: bool = False  # the config and database paths in /api/status
    base_path: str = ""  # the path prefix the page is served under behind a reverse proxy
    fleet: SinkSpec | None = None  # [fleet]: this probe's collector (also among `sinks`)

    @property
    def sink_secrets(self) -> tuple[str, ...]:
        """Every sink's URLs: each may carry a credential, so none is ever logged whole."""
        return tuple(u for s in self.sinks for u in s.options.secrets() if u)

    def by_role(self, role: Role) -> tuple[ResolverSpec, ...]:
        return tuple(r for r in self.resolvers if r.role is role)


def shipped_dir() -> Path:
    """Where the shipped config and watchlists are: inside a wheel, or the source tree."""
    inside = Path(__file__).resolve().parents[1] / "_shipped"
    if (inside / CONFIG_NAME).is_file():
        return inside
    return Path(__file__).resolve().parents[2]


def config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config wins over $NSDI_TRACKER_CONFIG, which wins over the shipped config."""
    chosen = cli_value or environ.get(ENV_CONFIG)
    return Path(chosen) if chosen else shipped_dir() / CONFIG_NAME


def database_path(
    cli_value: str | None, config: Config | None, environ: Mapping[str, str] = os.environ
) -> Path:
    """--db wins over $NSDI_TRACKER_DB, over the config's `database`, over db/nsdi-tracker.db."""
    if cli_value:
        return Path(cli_value)
    if environ.get(ENV_DB):
        return Path(environ[ENV_DB])
    if config is not None and config.database is not None:
        return config.database
    return DEFAULT_DB


def load_config(path: Path, sink_kinds: SinkKinds) -> Config:
    """Read and check the config file. `sink_kinds` are the kinds of sink there are (the
    delivery floor's registry, `delivery.sinks.KINDS`): each reads its own keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, path, sink_kinds)


def parse_config(data: Mapping[str, Any], path: Path, sink_kinds: SinkKinds) -> Config:
    """Validate a decoded TOML document; every error names the file and the key."""

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {problem}")

    keys.known(data, _TOP_KEYS, "", fail)
    base = path.resolve().parent
    resolvers = parse_resolvers(data.get("resolver"), base, fail)
    watchlists = tuple(
        keys.existing_file(base / p, f"watchlists[{i}]", fail)
        for i, p in enumerate(keys.str_list(data.get("watchlists", []), "watchlists", fail))
    )
    controls = _parse_controls(data, fail)
    sinkholes = _parse_sinkholes(data, fail)
    zone = _parse_zone(data, fail)
    database = _optional_path(data, "database", base, fail)
    raw_dir = _optional_path(data, "raw_dir", base, fail)
    retain = keys.integer(data.get("retain_days", 90), "retain_days", fail, 0, 36_500)
    sinks = parse_sinks(data["sink"], base, fail, sink_kinds) if "sink" in data else DEFAULT_SINKS
    fleet = parse_fleet(data["fleet"], base, fail, sink_kinds) if "fleet" in data else None
    listen, show_paths, base_path = (
        _parse_http(data["http"], fail) if "http" in data else (None, False, "")
    )
    return Config(
        path=path,
        resolvers=resolvers,
        watchlists=watchlists,
        controls=controls,
        sinkholes=sinkholes,
        negative_control_zone=zone,
        database=database,
        confirm=_parse_confirm(data.get("confirm", DEFAULT_CONFIRM), fail),
        retain_days=retain,
        raw_dir=raw_dir,
        sinks=(*sinks, fleet) if fleet else sinks,
        fleet=fleet,
        schedule=_parse_schedule(data, fail),
        listen=listen,
        show_paths=show_paths,
        base_path=base_path,
    )


def _parse_controls(data: Mapping[str, Any], fail: Fail) -> tuple[str, ...]:
    if "controls" not in data:
        return shipped_controls()
    names = keys.str_list(data["controls"], "controls", fail)
    if not names:
        raise fail("controls", "needs at least one positive control name")
    return tuple(keys.name(n, f"controls[{i}]", fail) for i, n in enumerate(names))


def _parse_sinkholes(data: Mapping[str, Any], fail: Fail) -> tuple[IPNetwork, ...]:
    sinkholes: list[IPNetwork] = []
    for i, s in enumerate(keys.str_list(data.get("sinkholes", []), "sinkholes", fail)):
        try:
            sinkholes.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            raise fail(f"sinkholes[{i}]", f"{s!r} is not an IP address or network") from None
    return tuple(sinkholes)


def _parse_zone(data: Mapping[str, Any], fail: Fail) -> str:
    zone = data.get("negative_control_zone", "example.com")
    if not isinstance(zone, str):
        raise fail("negative_control_zone", "must be a domain name string")
    return keys.name(zone, "negative_control_zone", fail)


def _optional_path(data: Mapping[str, Any], key: str, base: Path, fail: Fail) -> Path | None:
    return None if data.get(key) is None else keys.path(data[key], base, key, fail)


def _parse_http(http: object, fail: Fail) -> tuple[Listen, bool, str]:
    if not isinstance(http, dict):
        raise fail("http", 'must be a table: [http] listen = "127.0.0.1:8080"')
    keys.known(http, _HTTP_KEYS, "http", fail)
    listen = parse_listen(http.get("listen", DEFAULT_LISTEN), "http.listen", fail)
    show_paths = http.get("show_paths", False)
    if not isinstance(show_paths, bool):
        raise fail("http.show_paths", "must be true or false")
    base_path = http.get("base_path", "")
    if not isinstance(base_path, str) or (base_path and not keys.BASE_PATH.fullmatch(base_path)):
        raise fail(
            "http.base_path",
            f"{base_path!r} must be a path such as /nsdi or /tools/nsdi (letters, digits, "
            "- . _ ~), without a trailing /",
        )
    return listen, show_paths, base_path


def _parse_schedule(data: Mapping[str, Any], fail: Fail) -> Schedule:
    interval = keys.number(data.get("interval", DEFAULT_INTERVAL), "interval", fail, 1, 86_400)
    jitter = keys.number(data.get("jitter", min(interval / 10, 30.0)), "jitter", fail, 0, 3600)
    if jitter >= interval:
        raise fail("jitter", f"{jitter:g} must be less than interval ({interval:g})")
    timeout = keys.number(
        data.get("round_timeout", round((interval - jitter) * 0.8, 3)),
        "round_timeout", fail, 0.1, 86_400,
    )  # fmt: skip
    if timeout + jitter > interval:
        raise fail(
            "round_timeout",
            f"{timeout:g} + jitter {jitter:g} exceeds interval {interval:g}: rounds would overlap",
        )
    grace = keys.number(data.get("grace", DEFAULT_GRACE), "grace", fail, 0, 3600)
    return Schedule(interval, jitter, timeout, grace)


def parse_listen(value: object, key: str, fail: Fail) -> Listen:
    """Parse host:port or [v6]:port, the host an IP address (config or $NSDI_TRACKER_LISTEN)."""
    if not isinstance(value, str) or ":" not in value:
        raise fail(key, f'{value!r}: needs host:port, e.g. "127.0.0.1:8080" or "[::1]:8080"')
    text = value.strip()
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise fail(key, f"{value!r}: the host must be an IP address (0.0.0.0 for all)") from None
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise fail(key, f"{value!r}: port must be 0-65535 (0: any free port)")
    return Listen(host, int(port))


def listen_address(
    cli_value: str | None, config: Config, environ: Mapping[str, str] = os.environ
) -> Listen | None:
    """--listen wins over $NSDI_TRACKER_LISTEN, which wins over the config's [http] listen."""

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{key}: {problem}")

    if cli_value:
        return parse_listen(cli_value, "--listen", fail)
    if environ.get(ENV_LISTEN):
        return parse_listen(environ[ENV_LISTEN], f"${ENV_LISTEN}", fail)
    return config.listen


def _parse_confirm(value: object, fail: Fail) -> Policy:
    """`confirm = 2`, or a table: `[confirm] default = 2, present = 1` (per new verdict, or
    resolver state: `down`, `up`)."""
    if not isinstance(value, dict):
        return Policy(keys.integer(value, "confirm", fail, 1, 1000))
    per: dict[Verdict | ResolverState, int] = {}
    default = DEFAULT_CONFIRM
    for key, n in value.items():
        if key == "default":
            default = keys.integer(n, "confirm.default", fail, 1, 1000)
            continue
        verdict: Verdict | ResolverState
        if key in {str(state) for state in ResolverState}:
            verdict = ResolverState(key)
        elif key in {str(v) for v in Verdict}:
            verdict = Verdict(key)
        else:
            known = " | ".join([*Verdict, *ResolverState])
            raise fail(f"confirm.{key}", f"{key!r} is not one of default | {known}")
        if verdict is Verdict.UNKNOWN:
            raise fail("confirm.unknown", "unknown rounds never count, so they need no setting")
        per[verdict] = keys.integer(n, f"confirm.{key}", fail, 1, 1000)
    return Policy(default, per)


def shipped_controls() -> tuple[str, ...]:
    return tuple(e.domain for e in load_watchlist(shipped_dir() / CONTROLS_WATCHLIST))
