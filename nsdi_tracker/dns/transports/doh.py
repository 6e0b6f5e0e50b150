"""DNS over HTTPS (RFC 8484): POST with the wire-format message, on the round's HTTP session."""

from __future__ import annotations

import ssl
import time

import aiohttp

from nsdi_tracker.core.model import Transport
from nsdi_tracker.dns.fastwire import NotOurs, Query, Truncated
from nsdi_tracker.dns.transports.base import Ask, Exchange, Kind, _describe, _timed
from nsdi_tracker.dns.transports.stream import tls_context
from nsdi_tracker.dns.wire import parse_reply
from nsdi_tracker.settings.resolvers import ResolverSpec

DOH_TYPE = "application/dns-message"


async def doh(
    query: Query,
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,
    tls: ssl.SSLContext | None = None,
) -> Exchange:
    """DNS over HTTPS (RFC 8484), POST with the wire-format message."""
    start = time.perf_counter()
    try:
        async with session.post(
            url,
            data=query.wire,
            headers={"content-type": DOH_TYPE, "accept": DOH_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout),
            ssl=tls if tls is not None else True,
        ) as response:
            body = await response.read()
            if response.status != 200:
                return _timed(Exchange(error=f"HTTP {response.status}"), start)
            if response.content_type != DOH_TYPE:
                return _timed(Exchange(error=f"content type {response.content_type!r}"), start)
    except TimeoutError:
        return _timed(Exchange(timeout=True), start)
    except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return _timed(Exchange(error=_describe(exc)), start)
    try:
        reply = parse_reply(query, body)
    except NotOurs as exc:
        return _timed(Exchange(error=str(exc), ignored=1), start)
    except Truncated:
        return _timed(Exchange(error="no reply", ignored=1), start)
    return _timed(Exchange(reply=reply), start)


def _connect(spec: ResolverSpec, session: aiohttp.ClientSession | None) -> Ask:
    tls = tls_context(spec)

    async def ask(query: Query) -> Exchange:
        assert session is not None and spec.url is not None, "DoH needs the round's session"
        return await doh(query, session, spec.url, spec.timeout, tls)

    return ask


KIND: Kind = Kind(Transport.DOH, _connect, zero_id=True, http=True)
