"""DNS over UDP: one query on a fresh socket (`udp`), and the shared socket pool a resolver's
first attempts go through (`UdpPool`)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import secrets
import socket
import time
from typing import Final

import aiohttp

from nsdi_tracker.core.model import Summary, Transport
from nsdi_tracker.dns.fastwire import NotOurs, Query, Truncated
from nsdi_tracker.dns.latency import ms_since
from nsdi_tracker.dns.transports.base import Ask, Exchange, Kind, _describe, _timed
from nsdi_tracker.dns.wire import parse_reply
from nsdi_tracker.settings.resolvers import ResolverSpec

POOL_SOCKETS: Final = 8  # UDP sockets a resolver's first attempts share
RCVBUF: Final = 4 << 20  # bytes: replies to hundreds of queries in flight must not be dropped
SWEEP_TICK: Final = 0.05  # s: timed-out queries are looked for this often, or every eighth timeout
# datagrams read from one socket per wake-up, at most (then the others get a turn)
DRAIN: Final = 64


def _from_server(addr: tuple[str | int, ...], server_ip: str, port: int) -> bool:
    """An unconnected socket sees datagrams from anyone: the source is checked here, so a
    spoofed or stray reply is counted rather than silently dropped by the kernel."""
    return str(addr[0]).split("%", 1)[0] == server_ip and addr[1] == port


def _settled(query: Query, data: bytes, ignored: int) -> Exchange | None:
    """The exchange a message from the server ends, or None if it is ignored (and counted)."""
    try:
        return Exchange(reply=parse_reply(query, data), ignored=ignored)
    except Truncated:
        return Exchange(truncated=True, ignored=ignored)
    except NotOurs:
        return None


class _UdpWaiter(asyncio.DatagramProtocol):
    """Waits for the one datagram that answers `query`, counting everything else."""

    def __init__(self, query: Query, server: tuple[str, int]) -> None:
        self.query = query
        self.server_ip = str(ipaddress.ip_address(server[0]))  # as the kernel writes it
        self.server_port = server[1]
        self.ignored = 0
        self.done: asyncio.Future[Exchange] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.done.done():
            return
        if not _from_server(addr, self.server_ip, self.server_port):
            self.ignored += 1
            return
        result = _settled(self.query, data, self.ignored)
        if result is None:
            self.ignored += 1
        else:
            self.done.set_result(result)

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


class PoolOwner:
    """Who a pooled query's result goes to: `answered` with the reply, or `failed` (a
    timeout, a send error, a truncation) with the exchange. `job` is the owner's own, handed
    back as it was given. Called from the event loop, never from inside `UdpPool.send`."""

    def answered(self, job: object, reply: Summary, latency_ms: float, ignored: int) -> None:
        raise NotImplementedError

    def failed(self, job: object, ex: Exchange) -> None:
        raise NotImplementedError


class _Awaited(PoolOwner):
    """The owner of `UdpPool.exchange`'s queries: each job is the future its caller awaits."""

    def answered(self, job: object, reply: Summary, latency_ms: float, ignored: int) -> None:
        self.failed(job, Exchange(reply=reply, latency_ms=latency_ms, ignored=ignored))

    def failed(self, job: object, ex: Exchange) -> None:
        assert isinstance(job, asyncio.Future)
        if not job.done():  # the caller may have been cancelled meanwhile
            job.set_result(ex)


_AWAITED = _Awaited()


class _Pending:
    """One query in flight on a pool socket, until its reply or its timeout."""

    __slots__ = ("ignored", "job", "owner", "qid", "query", "start")

    def __init__(self, owner: PoolOwner, job: object, query: Query, qid: int, start: float) -> None:
        self.owner, self.job, self.query, self.qid, self.start = owner, job, query, qid, start
        self.ignored = 0


class _PoolSocket:
    """One socket of a pool: many queries in flight at once, told apart by message ID.

    A plain non-blocking socket watched with add_reader, not an asyncio transport: each
    wake-up drains up to DRAIN datagrams, where a transport costs an event-loop callback per
    datagram, and a send is one system call with no transport bookkeeping.
    """

    def __init__(self, pool: UdpPool, sock: socket.socket) -> None:
        self.pool = pool
        self.sock = sock
        self.waiting: dict[int, _Pending] = {}

    def readable(self) -> None:
        recv = self.sock.recvfrom_into
        buf = self.pool.buffer
        view = memoryview(buf)
        for _ in range(DRAIN):
            try:
                size, addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable, where the kernel reports it
                self.error_received(exc)
                return
            self.datagram_received(bytes(view[:size]), addr)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        pool = self.pool
        if (addr[1] != pool.port or addr[0] != pool.server_ip) and not _from_server(
            addr, pool.server_ip, pool.port
        ):
            pool.ignored += 1  # from someone else: counted, never read
            return
        pending = self.waiting.get((data[0] << 8) | data[1]) if len(data) >= 2 else None
        if pending is None:
            pool.ignored += 1  # no query of ours has that ID (late, or forged)
            return
        try:
            reply = parse_reply(pending.query, data, pending.qid)
        except NotOurs:
            pending.ignored += 1
            return
        except Truncated:
            del self.waiting[pending.qid]
            ex = Exchange(truncated=True, ignored=pending.ignored)
            pending.owner.failed(pending.job, _timed(ex, pending.start))
            return
        del self.waiting[pending.qid]
        latency = ms_since(pending.start)
        pending.owner.answered(pending.job, reply, latency, pending.ignored)

    def error_received(self, exc: Exception) -> None:
        failed = list(self.waiting.values())
        self.waiting.clear()
        for pending in failed:
            result = Exchange(error=_describe(exc), ignored=pending.ignored)
            pending.owner.failed(pending.job, _timed(result, pending.start))

    def expired(self, cutoff: float) -> list[_Pending]:
        """Take the queries sent before `cutoff` (their timeout is over)."""
        waiting = self.waiting
        late = [p for p in waiting.values() if p.start <= cutoff]
        for pending in late:
            del waiting[pending.qid]  # a late reply to this ID is nobody's
        return late

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.waiting.clear()


class UdpPool:
    """A fixed set of UDP sockets to one resolver, each multiplexing its queries by ID.

    Queries are sent with an owner and a job (`send`), not a task, future or closure each:
    one socket, task and timer per query would cost more than the rest of the round
    together. A query in flight is one small record, dropped when its reply arrives; its
    timeout is found by one timer that looks over the queries in flight every `tick` (a
    timeout ends up to a tick late).

    The trade-off for censorship measurement: first attempts share a few source ports, so a
    middlebox that keys on the client's port sees the same few. Retries, and re-asks of a
    national NXDOMAIN, go out on a fresh socket (`udp`), so an answer that looks like a
    removal is always confirmed from a new port.
    """

    def __init__(self, host: str, port: int, timeout: float, size: int = POOL_SOCKETS) -> None:
        self.host, self.port, self.timeout, self.size = host, port, timeout, size
        self.server_ip = str(ipaddress.ip_address(host))
        self.address = (host, port)
        self.tick = max(SWEEP_TICK, timeout / 8)
        self.buffer = bytearray(65535)  # every datagram is read into this, then copied out
        self.ignored = 0  # replies no query of ours could claim
        self._sockets: list[_PoolSocket] = []
        self._opening: asyncio.Lock | None = None
        self._next = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # IDs from a generator seeded by the OS: unpredictable to an off-path spoofer, without
        # a system call per query.
        self._rng = random.Random(secrets.randbits(128))

    async def open(self) -> None:
        """Open the sockets once (the first queries of a round arrive together); raises
        OSError if they cannot be opened (e.g. out of file descriptors)."""
        if self._sockets:
            return
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if not self._sockets:
                await self._open()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        opened: list[_PoolSocket] = []  # published whole: callers must never see half a pool
        try:
            for _ in range(self.size):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.setblocking(False)
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
                except BaseException:
                    sock.close()
                    raise
                member = _PoolSocket(self, sock)
                loop.add_reader(sock.fileno(), member.readable)
                opened.append(member)
        except BaseException:
            for member in opened:
                member.close(loop)
            raise
        self._sockets = opened
        self._loop = loop

    def send(self, query: Query, owner: PoolOwner, job: object) -> None:
        """Send `query` (its ID is the pool's to choose) on an open pool; the owner gets its
        result exactly once, from the event loop (never from inside this call)."""
        sock = self._sockets[self._next]
        self._next = (self._next + 1) % self.size
        waiting = sock.waiting
        rng = self._rng
        qid = rng.getrandbits(16)
        while qid in waiting:
            qid = rng.getrandbits(16)
        start = time.perf_counter()
        try:
            sock.sock.sendto(qid.to_bytes(2, "big") + query.wire[2:], self.address)
        except OSError as exc:  # a full send buffer too: the lane retries on a fresh socket
            result = _timed(Exchange(error=_describe(exc)), start)
            asyncio.get_running_loop().call_soon(owner.failed, job, result)
            return
        waiting[qid] = _Pending(owner, job, query, qid, start)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._expire)

    def _expire(self) -> None:
        self._timer = None
        cutoff = time.perf_counter() - self.timeout
        expired: list[_Pending] = []
        busy = False
        for sock in self._sockets:
            expired += sock.expired(cutoff)
            busy = busy or bool(sock.waiting)
        if busy:
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._expire)
        for pending in expired:
            ex = Exchange(timeout=True, ignored=pending.ignored)
            pending.owner.failed(pending.job, _timed(ex, pending.start))

    async def exchange(self, query: Query) -> Exchange:
        """One query through the pool, awaited."""
        try:
            await self.open()
        except OSError as exc:
            return Exchange(error=_describe(exc))
        done: asyncio.Future[Exchange] = asyncio.get_running_loop().create_future()
        self.send(query, _AWAITED, done)
        return await done

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None:
            for member in self._sockets:
                member.close(self._loop)
        self._sockets = []


def _connect(spec: ResolverSpec, session: aiohttp.ClientSession | None) -> Ask:
    return lambda query: udp(query, spec.host, spec.port, spec.timeout)


KIND: Kind = Kind(Transport.UDP, _connect)
