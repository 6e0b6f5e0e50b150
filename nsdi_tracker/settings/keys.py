"""Reading one key of a TOML table: the checks every part of the config shares.

Each takes the value, the key's place in the file (`resolver[0] (nsdi-a).timeout`) and `fail`,
which makes the ConfigError that names the file; a sink kind reads its own keys with these.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Set
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from nsdi_tracker.core.errors import ConfigError, InvalidName
from nsdi_tracker.core.names import normalize

Fail = Callable[[str, str], ConfigError]  # (key, problem) -> the error to raise
E = TypeVar("E", bound=StrEnum)
# A URL path prefix (`[http] base_path`, the X-Forwarded-Prefix header): /a or /a/b, no
# trailing slash, only characters that need no escaping in a URL or in HTML.
BASE_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def known(
    table: Mapping[str, Any], allowed: Set[str], where: str, fail: Fail, what: str = ""
) -> None:
    """Refuse a table with a key outside `allowed`, naming the first (sorted) and the known
    ones; `where`: the table's key ("" for the file's top level), `what`: e.g. "for a log
    sink"."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        at = f"{where}.{unknown[0]}" if where else unknown[0]
        label = f"unknown key {what}" if what else "unknown key"
        raise fail(at, f"{label} (known: {', '.join(sorted(allowed))})")


def enum(kind: type[E], value: object, key: str, fail: Fail) -> E:
    try:
        return kind(value)  # type: ignore[arg-type]  # a wrong type is a ValueError too
    except ValueError:
        allowed = " | ".join(m.value for m in kind)
        raise fail(key, f"{value!r} is not one of {allowed}") from None


def number(value: object, key: str, fail: Fail, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise fail(key, f"{value!r} must be a number from {low} to {high}")
    return float(value)


def integer(value: object, key: str, fail: Fail, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"{value!r} must be a whole number from {low} to {high}")
    return value


def str_list(value: object, key: str, fail: Fail) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, "must be a list of strings")
    return value


def path(value: object, base: Path, key: str, fail: Fail) -> Path:
    """A path string, relative to the config file's folder."""
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be a path string")
    return base / value


def existing_file(path: Path, key: str, fail: Fail) -> Path:
    if not path.is_file():
        raise fail(key, f"no such file: {path}")
    return path


def name(text: str, key: str, fail: Fail) -> str:
    try:
        return normalize(text)
    except InvalidName as exc:
        raise fail(key, str(exc)) from None


def host_port(text: str, default: int, key: str, fail: Fail) -> tuple[str, int]:
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


def _port(text: str, whole: str, key: str, fail: Fail) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise fail(key, f"{whole!r}: port must be 1-65535")
    return int(text)


def secret(
    item: Mapping[str, Any], key: str, where: str, fail: Fail, *, required: bool
) -> str | None:
    """`key` in the table, or `<key>_env` naming the environment variable that holds it;
    `where` is the table's place (`sink[0]`, `probe[1] (msk-1)`, or "" at the top). The value
    itself never appears in a message."""
    at = f"{where}.{key}" if where else key
    if key in item and f"{key}_env" in item:
        raise fail(f"{at}_env", f"give {key} or {key}_env, not both")
    if f"{key}_env" in item:
        var = item[f"{key}_env"]
        if not isinstance(var, str) or not os.environ.get(var):
            raise fail(f"{at}_env", f"environment variable {var!r} is not set")
        return os.environ[var]
    value = item.get(key)
    if value is None:
        if required:
            raise fail(at, f"missing (give {key} or {key}_env)")
        return None
    if not isinstance(value, str) or not value:
        raise fail(at, "must be a non-empty string")
    return value
