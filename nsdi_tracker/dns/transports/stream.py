"""DNS over TCP (RFC 7766) and over TLS (DoT, RFC 7858): one connection per exchange."""

from __future__ import annotations

import asyncio
import ssl
import struct
import time

import aiohttp

from nsdi_tracker.core.model import Transport
from nsdi_tracker.dns.fastwire import NotOurs, Query, Truncated
from nsdi_tracker.dns.transports.base import Ask, Exchange, Kind, _describe, _timed
from nsdi_tracker.dns.wire import parse_reply
from nsdi_tracker.settings.resolvers import ResolverSpec


async def stream(
    query: Query,
    host: str,
    port: int,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Exchange:
    """DNS over TCP (RFC 7766) or, with a TLS context, over TLS (RFC 7858)."""
    start = time.perf_counter()
    ignored = 0
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=server_hostname if tls else None
            )
            wire = query.wire
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                try:
                    reply = parse_reply(query, await reader.readexactly(length))
                except (NotOurs, Truncated):  # a stream reply's TC is nothing we could act on
                    ignored += 1
                    continue
                return _timed(Exchange(reply=reply, ignored=ignored), start)
    except TimeoutError:
        return _timed(Exchange(timeout=True, ignored=ignored), start)
    except asyncio.IncompleteReadError:
        return _timed(Exchange(error="connection closed before a reply", ignored=ignored), start)
    except (OSError, ssl.SSLError) as exc:
        return _timed(Exchange(error=_describe(exc), ignored=ignored), start)
    finally:
        if writer is not None:
            writer.close()


def tls_context(spec: ResolverSpec) -> ssl.SSLContext:
    """The system's trust store, or the resolver's own CA bundle (`ca_file`)."""
    return ssl.create_default_context(cafile=spec.ca_file)


def _tcp(spec: ResolverSpec, session: aiohttp.ClientSession | None) -> Ask:
    return lambda query: stream(query, spec.host, spec.port, spec.timeout)


def _dot(spec: ResolverSpec, session: aiohttp.ClientSession | None) -> Ask:
    tls = tls_context(spec)
    name = spec.tls_name or spec.host
    return lambda query: stream(query, spec.host, spec.port, spec.timeout, tls, name)


TCP: Kind = Kind(Transport.TCP, _tcp)
DOT: Kind = Kind(Transport.DOT, _dot)
