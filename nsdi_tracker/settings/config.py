"""Configuration: the TOML file, validated into frozen dataclasses before any query is sent."""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import logging
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from nsdi_tracker.core import redact
from nsdi_tracker.core.errors import ConfigError, InvalidName
from nsdi_tracker.core.model import NATIONAL, EventType, ResolverState, Role, Transport, Verdict
from nsdi_tracker.core.names import normalize
from nsdi_tracker.judge.confirm import DEFAULT_CONFIRM, Policy
from nsdi_tracker.settings.watchlist import load_watchlist

ENV_CONFIG = "NSDI_TRACKER_CONFIG"
ENV_DB = "NSDI_TRACKER_DB"
ENV_LISTEN = "NSDI_TRACKER_LISTEN"
DEFAULT_DB = Path("db/nsdi-tracker.db")  # relative to the working directory
CONFIG_NAME = "nsdi-tracker.toml"
CONTROLS_WATCHLIST = "watchlists/controls.toml"

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
_DEFAULT_PORTS = {Transport.UDP: 53, Transport.TCP: 53, Transport.DOT: 853, Transport.DOH: 443}
_RESOLVER_KEYS = {
    "name", "role", "address", "transport", "timeout", "retries", "max_inflight", "qps",
    "tls_name", "ca_file",
}  # fmt: skip
_TOP_KEYS = {
    "resolver", "watchlists", "controls", "sinkholes", "negative_control_zone",
    "database", "confirm", "retain_days", "raw_dir", "sink",
    "interval", "jitter", "round_timeout", "grace", "http",
}  # fmt: skip
_HTTP_KEYS = {"listen", "show_paths"}
DEFAULT_INTERVAL = 300.0
DEFAULT_GRACE = 20.0
DEFAULT_LISTEN = "127.0.0.1:8080"
_RETRY_KEYS = {"retry_initial", "retry_max", "give_up_after"}
_SINK_KEYS = {
    "log": {"path"},
    "webhook": {"url", "secret", "secret_env", "timeout", *_RETRY_KEYS},
    "apprise": {"urls", *_RETRY_KEYS},
}
_SINK_COMMON = {"type", "name", "events", "scopes"}
# By default a sink hears about the national headline's changes, not baselines.
DEFAULT_EVENTS = frozenset(t for t in EventType if t is not EventType.BASELINE)
DEFAULT_SCOPES = frozenset({NATIONAL})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ResolverSpec:
    """One resolver to ask, as the configuration describes it."""

    name: str
    role: Role
    transport: Transport
    address: str  # as written in the file
    host: str  # an IP literal, or for DoH the URL's host
    port: int
    url: str | None = None  # DoH only
    timeout: float = 2.0
    retries: int = 2
    max_inflight: int = 16
    qps: float | None = None  # None: no rate limit
    tls_name: str | None = None  # DoT: the name in the server's certificate
    ca_file: Path | None = None  # DoT/DoH: trust this CA bundle instead of the system's


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Where change events go: a log stream, a webhook, or Apprise notification URLs."""

    name: str
    type: str  # log | webhook | apprise
    events: frozenset[str] = DEFAULT_EVENTS
    scopes: frozenset[str] = DEFAULT_SCOPES  # "*" means every scope
    path: Path | None = None  # log: append to this file instead of stdout
    url: str | None = None  # webhook
    secret: str | None = None  # webhook: HMAC-SHA256 key
    timeout: float = 10.0
    urls: tuple[str, ...] = ()  # apprise
    retry_initial: float = 5.0  # seconds before the first retry
    retry_max: float = 600.0  # backoff ceiling
    give_up_after: float = 86_400.0  # a delivery older than this is marked failed

    def wants(self, event_type: str, scope: str) -> bool:
        return event_type in self.events and ("*" in self.scopes or scope in self.scopes)


DEFAULT_SINKS = (SinkSpec(name="log", type="log"),)  # events as JSON lines on stdout


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

    @property
    def sink_urls(self) -> tuple[str, ...]:
        """Every sink URL: each may carry a credential, so none is ever logged whole."""
        return tuple(u for s in self.sinks for u in (*s.urls, s.url) if u)

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


def load_config(path: Path) -> Config:
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
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate a decoded TOML document; every error names the file and the key."""

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {problem}")

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    base = path.resolve().parent

    raw_resolvers = data.get("resolver")
    if not isinstance(raw_resolvers, list) or not raw_resolvers:
        raise fail("resolver", "at least one [[resolver]] table is required")
    resolvers = tuple(
        _parse_resolver(item, f"resolver[{i}]", base, fail) for i, item in enumerate(raw_resolvers)
    )
    seen: set[str] = set()
    for i, spec in enumerate(resolvers):
        if spec.name == NATIONAL:
            raise fail(f"resolver[{i}].name", f"{NATIONAL!r} is reserved for the headline")
        if spec.name in seen:
            raise fail(f"resolver[{i}].name", f"duplicate resolver name {spec.name!r}")
        seen.add(spec.name)
    for role in (Role.NATIONAL, Role.REFERENCE):
        if not any(r.role is role for r in resolvers):
            raise fail("resolver", f"at least one resolver with role = {str(role)!r} is required")

    watchlists = tuple(
        _existing_file(base / p, f"watchlists[{i}]", fail)
        for i, p in enumerate(_str_list(data.get("watchlists", []), "watchlists", fail))
    )

    if "controls" in data:
        names = _str_list(data["controls"], "controls", fail)
        if not names:
            raise fail("controls", "needs at least one positive control name")
        controls = tuple(_name(n, f"controls[{i}]", fail) for i, n in enumerate(names))
    else:
        controls = shipped_controls()

    sinkholes: list[IPNetwork] = []
    for i, s in enumerate(_str_list(data.get("sinkholes", []), "sinkholes", fail)):
        try:
            sinkholes.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            raise fail(f"sinkholes[{i}]", f"{s!r} is not an IP address or network") from None

    zone = data.get("negative_control_zone", "example.com")
    if not isinstance(zone, str):
        raise fail("negative_control_zone", "must be a domain name string")
    zone = _name(zone, "negative_control_zone", fail)

    database = data.get("database")
    if database is not None:
        if not isinstance(database, str) or not database.strip():
            raise fail("database", "must be a path string")
        database = base / database
    raw_dir = data.get("raw_dir")
    if raw_dir is not None:
        if not isinstance(raw_dir, str) or not raw_dir.strip():
            raise fail("raw_dir", "must be a path string")
        raw_dir = base / raw_dir
    retain = _integer(data.get("retain_days", 90), "retain_days", fail, 0, 36_500)

    sinks = _parse_sinks(data["sink"], base, fail) if "sink" in data else DEFAULT_SINKS
    listen = None
    show_paths = False
    if "http" in data:
        http = data["http"]
        if not isinstance(http, dict):
            raise fail("http", 'must be a table: [http] listen = "127.0.0.1:8080"')
        unknown = sorted(set(http) - _HTTP_KEYS)
        if unknown:
            raise fail(
                f"http.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_HTTP_KEYS))})"
            )
        listen = parse_listen(http.get("listen", DEFAULT_LISTEN), "http.listen", fail)
        show_paths = http.get("show_paths", False)
        if not isinstance(show_paths, bool):
            raise fail("http.show_paths", "must be true or false")
    return Config(
        path=path,
        resolvers=resolvers,
        watchlists=watchlists,
        controls=controls,
        sinkholes=tuple(sinkholes),
        negative_control_zone=zone,
        database=database,
        confirm=_parse_confirm(data.get("confirm", DEFAULT_CONFIRM), fail),
        retain_days=retain,
        raw_dir=raw_dir,
        sinks=sinks,
        schedule=_parse_schedule(data, fail),
        listen=listen,
        show_paths=show_paths,
    )


def _parse_schedule(data: Mapping[str, Any], fail: Any) -> Schedule:
    interval = _number(data.get("interval", DEFAULT_INTERVAL), "interval", fail, 1, 86_400)
    jitter = _number(data.get("jitter", min(interval / 10, 30.0)), "jitter", fail, 0, 3600)
    if jitter >= interval:
        raise fail("jitter", f"{jitter:g} must be less than interval ({interval:g})")
    timeout = _number(
        data.get("round_timeout", round((interval - jitter) * 0.8, 3)),
        "round_timeout", fail, 0.1, 86_400,
    )  # fmt: skip
    if timeout + jitter > interval:
        raise fail(
            "round_timeout",
            f"{timeout:g} + jitter {jitter:g} exceeds interval {interval:g}: rounds would overlap",
        )
    grace = _number(data.get("grace", DEFAULT_GRACE), "grace", fail, 0, 3600)
    return Schedule(interval, jitter, timeout, grace)


def parse_listen(value: object, key: str, fail: Any) -> Listen:
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


def _parse_confirm(value: object, fail: Any) -> Policy:
    """`confirm = 2`, or a table: `[confirm] default = 2, present = 1` (per new verdict, or
    resolver state: `down`, `up`)."""
    if not isinstance(value, dict):
        return Policy(_integer(value, "confirm", fail, 1, 1000))
    per: dict[Verdict | ResolverState, int] = {}
    default = DEFAULT_CONFIRM
    for key, n in value.items():
        if key == "default":
            default = _integer(n, "confirm.default", fail, 1, 1000)
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
        per[verdict] = _integer(n, f"confirm.{key}", fail, 1, 1000)
    return Policy(default, per)


def _parse_sinks(raw: object, base: Path, fail: Any) -> tuple[SinkSpec, ...]:
    if not isinstance(raw, list):
        raise fail("sink", "must be [[sink]] tables")
    sinks: list[SinkSpec] = []
    for i, item in enumerate(raw):
        key = f"sink[{i}]"
        if not isinstance(item, dict):
            raise fail(key, "must be a table")
        kind = item.get("type")
        if kind not in _SINK_KEYS:
            raise fail(f"{key}.type", f"{kind!r} is not one of {' | '.join(_SINK_KEYS)}")
        name = item.get("name", kind if i == 0 else f"{kind}-{i}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail(
                f"{key}.name", f"{name!r} must match [a-z0-9-], start with a letter or digit"
            )
        if any(s.name == name for s in sinks):
            raise fail(f"{key}.name", f"duplicate sink name {name!r}")
        known = _SINK_KEYS[kind] | _SINK_COMMON
        unknown = sorted(set(item) - known)
        if unknown:
            raise fail(
                f"{key}.{unknown[0]}",
                f"unknown key for a {kind} sink (known: {', '.join(sorted(known))})",
            )
        events = frozenset(
            _str_list(item.get("events", sorted(DEFAULT_EVENTS)), f"{key}.events", fail)
        )
        for ev in sorted(events):
            _enum(EventType, ev, f"{key}.events", fail)
        scopes = frozenset(
            _str_list(item.get("scopes", sorted(DEFAULT_SCOPES)), f"{key}.scopes", fail)
        )
        common: dict[str, Any] = {"name": name, "type": kind, "events": events, "scopes": scopes}
        for k in ("retry_initial", "retry_max"):
            if k in item:
                common[k] = _number(item[k], f"{key}.{k}", fail, 0.01, 86_400)
        if "give_up_after" in item:
            common["give_up_after"] = _number(
                item["give_up_after"], f"{key}.give_up_after", fail, 1, 365 * 86_400
            )
        if kind == "log":
            path = item.get("path")
            if path is not None:
                if not isinstance(path, str) or not path.strip():
                    raise fail(f"{key}.path", "must be a path string")
                common["path"] = base / path
        elif kind == "webhook":
            url = item.get("url")
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                shown = redact.url(url) if isinstance(url, str) else repr(url)
                raise fail(f"{key}.url", f"{shown}: needs an http:// or https:// URL")
            common["url"] = url
            common["secret"] = _secret(item, key, fail)
            common["timeout"] = _number(item.get("timeout", 10.0), f"{key}.timeout", fail, 0.1, 300)
        else:
            urls = _str_list(item.get("urls", []), f"{key}.urls", fail)
            if not urls:
                raise fail(f"{key}.urls", "needs at least one Apprise URL, e.g. tgram://token/chat")
            common["urls"] = tuple(urls)
            if importlib.util.find_spec("apprise") is None:
                raise fail(f"{key}.type", "apprise needs: pip install 'nsdi-tracker[notify]'")
            for i, url in enumerate(urls):
                if not _apprise_understands(url):
                    raise fail(
                        f"{key}.urls[{i}]",
                        f"sink {name!r}: Apprise does not understand this {redact.scheme(url)} "
                        "URL (not shown: it may hold a token); the forms are listed at "
                        "https://github.com/caronc/apprise/wiki",
                    )
        sinks.append(SinkSpec(**common))
    return tuple(sinks)


def import_apprise() -> ModuleType:
    """The apprise module (ImportError without the notify extra), imported without the
    DeprecationWarning of the imghdr it imports when it first sends."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(ImportError):
            import imghdr  # noqa: F401
        import apprise
    return apprise


def _apprise_understands(url: str) -> bool:
    """Whether Apprise can make a notifier of `url`, asked quietly: Apprise logs the URLs it
    cannot parse, tokens and all."""
    apprise = import_apprise()
    quiet = logging.getLogger("apprise")
    before, quiet.disabled = quiet.disabled, True
    try:
        return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None
    except Exception:  # a plugin's own bug on a strange URL: not understood either
        return False
    finally:
        quiet.disabled = before


def _secret(item: Mapping[str, Any], key: str, fail: Any) -> str | None:
    """`secret` in the file, or `secret_env` naming an environment variable that holds it."""
    if "secret" in item and "secret_env" in item:
        raise fail(f"{key}.secret_env", "give secret or secret_env, not both")
    if "secret_env" in item:
        var = item["secret_env"]
        if not isinstance(var, str) or not os.environ.get(var):
            raise fail(f"{key}.secret_env", f"environment variable {var!r} is not set")
        return os.environ[var]
    secret = item.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise fail(f"{key}.secret", "must be a non-empty string")
    return secret


def shipped_controls() -> tuple[str, ...]:
    return tuple(e.domain for e in load_watchlist(shipped_dir() / CONTROLS_WATCHLIST))


def _parse_resolver(item: object, key: str, base: Path, fail: Any) -> ResolverSpec:
    if not isinstance(item, dict):
        raise fail(key, "must be a table")
    if "name" not in item:
        raise fail(f"{key}.name", "missing")
    name = item["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(f"{key}.name", f"{name!r} must match [a-z0-9-], start with a letter or digit")
    key = f"{key} ({name})"
    unknown = sorted(set(item) - _RESOLVER_KEYS)
    if unknown:
        raise fail(
            f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_RESOLVER_KEYS))})"
        )
    for required in ("role", "address"):
        if required not in item:
            raise fail(f"{key}.{required}", "missing")
    role = _enum(Role, item["role"], f"{key}.role", fail)
    transport = _enum(Transport, item.get("transport", "udp"), f"{key}.transport", fail)
    address = item["address"]
    if not isinstance(address, str) or not address.strip():
        raise fail(f"{key}.address", "must be a non-empty string")
    url = None
    if transport is Transport.DOH:
        parts = urlsplit(address)
        if parts.scheme != "https" or not parts.hostname:
            raise fail(f"{key}.address", f"{address!r}: DoH needs an https:// URL")
        host = parts.hostname
        try:
            port = parts.port or 443
        except ValueError:
            raise fail(f"{key}.address", f"{address!r}: bad port") from None
        url = address
    else:
        host, port = _host_port(address, _DEFAULT_PORTS[transport], f"{key}.address", fail)

    timeout = _number(item.get("timeout", 2.0), f"{key}.timeout", fail, low=0.05, high=60)
    retries = _integer(item.get("retries", 2), f"{key}.retries", fail, low=0, high=10)
    inflight = _integer(item.get("max_inflight", 16), f"{key}.max_inflight", fail, 1, 100_000)
    qps = item.get("qps")
    if qps is not None:
        qps = _number(qps, f"{key}.qps", fail, low=0.01, high=10_000_000)
    tls_name = item.get("tls_name")
    if tls_name is not None and (transport is not Transport.DOT or not isinstance(tls_name, str)):
        raise fail(f"{key}.tls_name", "is a string and only for transport = 'dot'")
    ca_file = item.get("ca_file")
    if ca_file is not None:
        if transport not in (Transport.DOT, Transport.DOH) or not isinstance(ca_file, str):
            raise fail(f"{key}.ca_file", "is a path and only for transport 'dot' or 'doh'")
        ca_file = _existing_file(base / ca_file, f"{key}.ca_file", fail)
    return ResolverSpec(
        name=name,
        role=role,
        transport=transport,
        address=address,
        host=host,
        port=port,
        url=url,
        timeout=timeout,
        retries=retries,
        max_inflight=inflight,
        qps=qps,
        tls_name=tls_name,
        ca_file=ca_file,
    )


def _host_port(text: str, default: int, key: str, fail: Any) -> tuple[str, int]:
    """Parse "host", "host:port", "[v6]:port" or a bare IPv6 address; the host must be an IP."""
    text = text.strip()
    host, port = text, default
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise fail(key, f"{text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise fail(key, f"{text!r}: expected ':port' after ']'")
            port = _port(rest[1:], text, key, fail)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, text, key, fail)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise fail(
            key, f"{text!r}: the host must be an IP address (a name would itself need resolving)"
        ) from None
    return host, port


def _port(text: str, whole: str, key: str, fail: Any) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise fail(key, f"{whole!r}: port must be 1-65535")
    return int(text)


def _enum(kind: Any, value: object, key: str, fail: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = " | ".join(m.value for m in kind)
        raise fail(key, f"{value!r} is not one of {allowed}") from None


def _number(value: object, key: str, fail: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(key, f"{value!r} must be a number from {low} to {high}")
    return float(value)


def _integer(value: object, key: str, fail: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"{value!r} must be a whole number from {low} to {high}")
    return value


def _str_list(value: object, key: str, fail: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, "must be a list of strings")
    return value


def _existing_file(path: Path, key: str, fail: Any) -> Path:
    if not path.is_file():
        raise fail(key, f"no such file: {path}")
    return path


def _name(text: str, key: str, fail: Any) -> str:
    try:
        return normalize(text)
    except InvalidName as exc:
        raise fail(key, str(exc)) from None
