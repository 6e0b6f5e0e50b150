"""A simulated recursive resolver on UDP and TCP, answering from a Zone of scripts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

import dns.exception
import dns.message
import dns.rdatatype

from nsdi_tracker.sim.script import Noise, Query, Script, Zone, build_reply

MALFORMED = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07garbage"


def noise_messages(query: dns.message.Message, script: Script) -> list[tuple[Noise, bytes]]:
    """The datagrams to send before the real reply, in order."""
    out: list[tuple[Noise, bytes]] = []
    for kind in script.noise:
        if kind is Noise.MALFORMED:
            out.append((kind, MALFORMED))
        elif kind is Noise.WRONG_ID:
            wrong = build_reply(query, script, truncate=False)
            wrong.id = (query.id + 1) % 65536
            out.append((kind, wrong.to_wire()))
        elif kind is Noise.WRONG_QUESTION:
            other = dns.message.make_query("wrong-question.invalid.", "A")
            other.id = query.id
            out.append((kind, build_reply(other, script, truncate=False).to_wire()))
        else:
            out.append((kind, build_reply(query, script, truncate=False).to_wire()))
    return out


class SimResolver:
    """UDP and TCP on one loopback port (port 0: the OS picks); `address` is "host:port"."""

    def __init__(
        self, zone: Zone | None = None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.zone = zone if zone is not None else Zone()
        self.host = host
        self.tls = tls  # when set, the stream side is DNS over TLS (RFC 7858)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._spare: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def start(self) -> SimResolver:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):  # the UDP port may be taken for TCP: try another
            udp, _proto = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, 0), family=family
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, self.host, port, ssl=self.tls
                )
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            break
        else:
            raise OSError("could not bind UDP and TCP on one port")
        self._spare, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0), family=family
        )
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._udp:
            self._udp.close()
        if self._spare:
            self._spare.close()
        if self._tcp:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def __aenter__(self) -> SimResolver:
        return await self.start()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accept(
        self, wire: bytes, transport: str, client: tuple[str, int]
    ) -> tuple[dns.message.Message, Script] | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        q = query.question[0]
        qname = q.name.to_text(omit_final_dot=True).lower()
        qtype = dns.rdatatype.to_text(q.rdtype)
        self.zone.log.append(Query(qname, qtype, transport, client))
        return query, self.zone.script_for(qname, qtype)

    async def _answer_udp(
        self, query: dns.message.Message, script: Script, client: tuple[str, int]
    ) -> None:
        if script.delay:
            await asyncio.sleep(script.delay)
        assert self._udp is not None and self._spare is not None
        for kind, data in noise_messages(query, script):
            (self._spare if kind is Noise.OTHER_PORT else self._udp).sendto(data, client)
        if not script.silent:
            reply = build_reply(query, script, truncate=script.truncate)
            self._udp.sendto(reply.to_wire(), client)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[:2]
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(length)
                accepted = self._accept(wire, "dot" if self.tls else "tcp", client)
                if accepted is None:
                    break
                query, script = accepted
                if script.delay:
                    await asyncio.sleep(script.delay)
                frames = [d for k, d in noise_messages(query, script) if k is not Noise.OTHER_PORT]
                if not script.silent:
                    frames.append(
                        build_reply(query, script, truncate=False).to_wire(max_size=65535)
                    )
                for data in frames:
                    writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: SimResolver) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client = (str(addr[0]), int(addr[1]))
        accepted = self.server._accept(data, "udp", client)
        if accepted is not None:
            self.server._spawn(self.server._answer_udp(*accepted, client))
