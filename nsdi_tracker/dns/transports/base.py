"""What every transport shares: the result of one exchange, and the kind record a transport
module registers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nsdi_tracker.core.model import Summary, Transport
from nsdi_tracker.dns.fastwire import Query
from nsdi_tracker.dns.latency import ms_since
from nsdi_tracker.settings.resolvers import ResolverSpec

if TYPE_CHECKING:
    import aiohttp


@dataclass(slots=True)  # mutable: stamped with its latency on the way out, never shared
class Exchange:
    """The result of one exchange: a matching reply, a truncation, or a failure."""

    reply: Summary | None = None
    truncated: bool = False
    timeout: bool = False
    error: str | None = None
    ignored: int = 0  # messages dropped because they did not answer our query
    latency_ms: float = 0.0


Ask = Callable[[Query], Awaitable[Exchange]]  # one exchange with one resolver, on a fresh socket


@dataclass(frozen=True, slots=True)
class Kind:
    """A transport, as its module registers it: how to make the function that asks one
    configured resolver (on a fresh connection each time), and whether its queries carry
    message ID 0 (DoH, for HTTP caches: RFC 8484 4.1) and go over the round's shared HTTP
    session (`http`: DoH)."""

    transport: Transport
    connect: Callable[[ResolverSpec, aiohttp.ClientSession | None], Ask]
    zero_id: bool = False
    http: bool = False


def _timed(result: Exchange, start: float) -> Exchange:
    result.latency_ms = ms_since(start)
    return result


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
