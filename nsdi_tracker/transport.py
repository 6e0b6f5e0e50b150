"""One DNS exchange over UDP, TCP, DoT or DoH. Each call uses a fresh socket (new source port)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import struct
import time
from dataclasses import dataclass, replace

import aiohttp

from nsdi_tracker.wire import Query, Summary, parse_reply

DOH_TYPE = "application/dns-message"


@dataclass(frozen=True, slots=True)
class Exchange:
    """The result of one exchange: a matching reply, a truncation, or a failure."""

    reply: Summary | None = None
    truncated: bool = False
    timeout: bool = False
    error: str | None = None
    ignored: int = 0  # messages dropped because they did not answer our query
    latency_ms: float = 0.0


class _UdpWaiter(asyncio.DatagramProtocol):
    """Waits for the one datagram that answers `query`, counting everything else."""

    def __init__(self, query: Query, server: tuple[str, int]) -> None:
        self.query = query
        self.server_ip = ipaddress.ip_address(server[0])
        self.server_port = server[1]
        self.ignored = 0
        self.done: asyncio.Future[Exchange] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.done.done():
            return
        # An unconnected socket sees datagrams from anyone: the source is checked here, so a
        # spoofed or stray reply is counted rather than silently dropped by the kernel.
        host = str(addr[0]).split("%", 1)[0]
        if ipaddress.ip_address(host) != self.server_ip or addr[1] != self.server_port:
            self.ignored += 1
            return
        parsed = parse_reply(self.query, data)
        if parsed.mismatch is not None:
            self.ignored += 1
        elif parsed.truncated:
            self.done.set_result(Exchange(truncated=True, ignored=self.ignored))
        else:
            self.done.set_result(Exchange(reply=parsed.summary, ignored=self.ignored))

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():  # e.g. ICMP port unreachable
            self.done.set_result(Exchange(error=_describe(exc), ignored=self.ignored))


async def udp(query: Query, host: str, port: int, timeout: float) -> Exchange:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    start = time.perf_counter()
    try:
        transport, waiter = await loop.create_datagram_endpoint(
            lambda: _UdpWaiter(query, (host, port)),
            family=family,
            local_addr=("::" if family == socket.AF_INET6 else "0.0.0.0", 0),
        )
    except OSError as exc:
        return Exchange(error=_describe(exc))
    try:
        transport.sendto(query.wire, (host, port))
        try:
            result = await asyncio.wait_for(asyncio.shield(waiter.done), timeout)
        except TimeoutError:
            result = Exchange(timeout=True, ignored=waiter.ignored)
    finally:
        transport.close()
    return _timed(result, start)


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
                parsed = parse_reply(query, await reader.readexactly(length))
                if parsed.summary is not None:
                    return _timed(Exchange(reply=parsed.summary, ignored=ignored), start)
                ignored += 1  # a stream reply is never truncated in a way we could act on
    except TimeoutError:
        return _timed(Exchange(timeout=True, ignored=ignored), start)
    except asyncio.IncompleteReadError:
        return _timed(Exchange(error="connection closed before a reply", ignored=ignored), start)
    except (OSError, ssl.SSLError) as exc:
        return _timed(Exchange(error=_describe(exc), ignored=ignored), start)
    finally:
        if writer is not None:
            writer.close()


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
    parsed = parse_reply(query, body)
    if parsed.summary is None:
        return _timed(Exchange(error=parsed.mismatch or "no reply", ignored=1), start)
    return _timed(Exchange(reply=parsed.summary), start)


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def _timed(result: Exchange, start: float) -> Exchange:
    return replace(result, latency_ms=round((time.perf_counter() - start) * 1000, 3))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
