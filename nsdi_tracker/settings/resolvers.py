"""The `[[resolver]]` tables: who is asked, how, and with what limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nsdi_tracker.core.model import NATIONAL, Role, Transport
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")  # resolver and sink names
_KEYS = {
    "name", "role", "address", "transport", "timeout", "retries", "max_inflight", "qps",
    "tls_name", "ca_file",
}  # fmt: skip


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


def parse_resolvers(raw: object, base: Path, fail: Fail) -> tuple[ResolverSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("resolver", "at least one [[resolver]] table is required")
    resolvers = tuple(
        _parse_resolver(item, f"resolver[{i}]", base, fail) for i, item in enumerate(raw)
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
    return resolvers


def _parse_resolver(item: object, key: str, base: Path, fail: Fail) -> ResolverSpec:
    if not isinstance(item, dict):
        raise fail(key, "must be a table")
    if "name" not in item:
        raise fail(f"{key}.name", "missing")
    name = item["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise fail(f"{key}.name", f"{name!r} must match [a-z0-9-], start with a letter or digit")
    key = f"{key} ({name})"
    keys.known(item, _KEYS, key, fail)
    for required in ("role", "address"):
        if required not in item:
            raise fail(f"{key}.{required}", "missing")
    role = keys.enum(Role, item["role"], f"{key}.role", fail)
    transport = keys.enum(Transport, item.get("transport", "udp"), f"{key}.transport", fail)
    address = item["address"]
    if not isinstance(address, str) or not address.strip():
        raise fail(f"{key}.address", "must be a non-empty string")
    host, port, url = _address(address, transport, f"{key}.address", fail)
    qps = item.get("qps")
    tls_name, ca_file = _tls(item, transport, key, base, fail)
    return ResolverSpec(
        name=name,
        role=role,
        transport=transport,
        address=address,
        host=host,
        port=port,
        url=url,
        timeout=keys.number(item.get("timeout", 2.0), f"{key}.timeout", fail, 0.05, 60),
        retries=keys.integer(item.get("retries", 2), f"{key}.retries", fail, 0, 10),
        max_inflight=keys.integer(
            item.get("max_inflight", 16), f"{key}.max_inflight", fail, 1, 100_000
        ),
        qps=None if qps is None else keys.number(qps, f"{key}.qps", fail, 0.01, 10_000_000),
        tls_name=tls_name,
        ca_file=ca_file,
    )


def _address(
    address: str, transport: Transport, key: str, fail: Fail
) -> tuple[str, int, str | None]:
    """(host, port, URL): an https:// URL for DoH, else host[:port] with an IP host."""
    if not transport.by_url:
        return (*keys.host_port(address, transport.default_port, key, fail), None)
    parts = urlsplit(address)
    if parts.scheme != "https" or not parts.hostname:
        raise fail(key, f"{address!r}: DoH needs an https:// URL")
    try:
        port = parts.port or transport.default_port
    except ValueError:
        raise fail(key, f"{address!r}: bad port") from None
    return parts.hostname, port, address


def _tls(
    item: dict[str, object], transport: Transport, key: str, base: Path, fail: Fail
) -> tuple[str | None, Path | None]:
    """`tls_name` (DoT: DoH takes it from the URL) and `ca_file` (DoT, DoH)."""
    tls_name = item.get("tls_name")
    if tls_name is not None and (
        not transport.tls or transport.by_url or not isinstance(tls_name, str)
    ):
        raise fail(f"{key}.tls_name", "is a string and only for transport = 'dot'")
    ca_file = item.get("ca_file")
    if ca_file is None:
        return tls_name, None
    if not transport.tls or not isinstance(ca_file, str):
        raise fail(f"{key}.ca_file", "is a path and only for transport 'dot' or 'doh'")
    return tls_name, keys.existing_file(base / ca_file, f"{key}.ca_file", fail)
