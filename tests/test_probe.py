"""Asking one resolver: which replies are accepted, retries, fallbacks, limits."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import dns.rcode
import pytest

from nsdi_tracker.core.model import Outcome, Role, Transport
from nsdi_tracker.dns.probe import RateLimiter, ResolverClient
from nsdi_tracker.dns.wire import make_query
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.sim import Noise, SimResolver, Zone, answer, nodata, nxdomain, rcode, silent


def spec_for(server: Any, transport: Transport = Transport.UDP, **kw: Any) -> ResolverSpec:
    url = getattr(server, "url", None)
    base: dict[str, Any] = {
        "name": "t", "role": Role.NATIONAL, "transport": transport,
        "address": url or server.address, "host": server.host, "port": server.port,
        "url": url, "timeout": 0.5, "retries": 2,
    }  # fmt: skip
    base.update(kw)
    return ResolverSpec(**base)


async def ask(server: Any, name: str, qtype: str = "A", **kw: Any) -> Any:
    async with ResolverClient(spec_for(server, **kw)) as client:
        return await client.query(name, qtype)


async def test_answer_with_cname_chain_and_ttl(sim: Any) -> None:
    """Addresses are read at the end of the CNAME chain; the chain and min TTL are kept."""
    zone = Zone()
    zone.set("www.youtube.com", answer("142.250.74.46", cname=("youtube-ui.l.google.com",), ttl=60))
    obs = await ask(await sim(zone), "WWW.YouTube.com")
    assert obs.outcome is Outcome.ANSWER
    assert obs.addresses == ("142.250.74.46",)
    assert obs.cname_chain == ("youtube-ui.l.google.com",)
    assert obs.min_ttl == 60
    assert obs.flags.ra and not obs.flags.aa
    assert obs.attempts == 1 and obs.transport == "udp"


async def test_nodata_and_nxdomain_evidence(sim: Any) -> None:
    """NODATA and NXDOMAIN keep rcode, AA and the authority summary (SOA zone, NSEC)."""
    zone = Zone()
    zone.set("v4only.example", answer("93.184.215.14"))
    zone.set("signed-gone.com", nxdomain(nsec=True))
    zone.set("bare.com", nxdomain(soa=False))
    zone.set("forged.com", nxdomain(soa=False, aa=True))
    server = await sim(zone)
    aaaa = await ask(server, "v4only.example", "AAAA")
    assert aaaa.outcome is Outcome.NODATA and aaaa.rcode == "NOERROR"
    assert aaaa.authority.soa_zone == "example"
    signed = await ask(server, "signed-gone.com")
    assert (signed.outcome, signed.nx_label, signed.authority.nsec) == (
        Outcome.NXDOMAIN, "ordinary", True,
    )  # fmt: skip
    assert (await ask(server, "bare.com")).nx_label == "bare"
    assert (await ask(server, "forged.com")).nx_label == "forged"


@pytest.mark.parametrize(
    ("noise", "count"),
    [
        ((Noise.WRONG_ID,), 1),
        ((Noise.WRONG_QUESTION,), 1),
        ((Noise.MALFORMED,), 1),
        ((Noise.OTHER_PORT,), 1),
        ((Noise.OTHER_PORT, Noise.WRONG_ID, Noise.MALFORMED, Noise.WRONG_QUESTION), 4),
    ],
)
async def test_mismatched_replies_are_ignored_and_counted(
    sim: Any, noise: tuple[Noise, ...], count: int
) -> None:
    """Spoofed, stray and malformed datagrams before the real reply never become the answer.

    On a fresh socket each is counted on the observation. On the shared pool, a datagram that
    carries one of our IDs is counted on that query's observation; one that no query can
    claim (another port, another ID, not DNS) goes to the resolver's counters."""
    zone = Zone()
    # The noise carries NXDOMAIN-looking content for the first three kinds; only the real
    # reply has the address.
    zone.set("site.com", answer("151.101.1.80", noise=noise))
    server = await sim(zone)
    async with ResolverClient(spec_for(server)) as client:
        fresh = await client.query("site.com", "A", fresh=True)
        pooled = await client.query("site.com", "A")
    for obs in (fresh, pooled):
        assert obs.outcome is Outcome.ANSWER
        assert obs.addresses == ("151.101.1.80",)
    assert fresh.ignored == count
    assert client.counters.ignored - fresh.ignored == count  # the pooled query: all counted
    if noise == (Noise.WRONG_QUESTION,):
        assert pooled.ignored == 1  # our ID, another question: this query's evidence


async def test_only_spoofed_reply_times_out(sim: Any) -> None:
    """A reply from the wrong port alone is not an answer: the query times out, counted."""
    zone = Zone()
    zone.set("site.com", answer("151.101.1.80", noise=(Noise.OTHER_PORT,), silent=True))
    async with ResolverClient(spec_for(await sim(zone), timeout=0.2, retries=1)) as client:
        obs = await client.query("site.com", "A")
    assert obs.outcome is Outcome.TIMEOUT
    assert obs.attempts == 2
    # The retry's fresh socket counts its spoof on the observation; the pool's first attempt
    # could not tell whose it was, so the resolver's counters have it.
    assert obs.ignored == 1 and client.counters.ignored == 2


async def test_retries_use_a_fresh_source_port(sim: Any) -> None:
    """Each retry comes from a new socket; a final success is reported with its attempt count."""
    zone = Zone()
    zone.push("flaky.com", silent())
    zone.push("flaky.com", rcode(dns.rcode.SERVFAIL))
    zone.set("flaky.com", answer("151.101.1.1"))
    server = await sim(zone)
    obs = await ask(server, "flaky.com", timeout=0.2)
    assert obs.outcome is Outcome.ANSWER
    assert obs.attempts == 3
    ports = [q.client[1] for q in zone.queries("flaky.com")]
    assert len(ports) == 3 and len(set(ports)) == 3


@pytest.mark.parametrize(
    ("script", "outcome"),
    [
        (rcode(dns.rcode.SERVFAIL, ede=((22, "No Reachable Authority"),)), Outcome.SERVFAIL),
        (rcode(dns.rcode.REFUSED), Outcome.REFUSED),
        (silent(), Outcome.TIMEOUT),
        (rcode(dns.rcode.NOTIMP), Outcome.ERROR),
    ],
)
async def test_failures_are_retried_then_reported(sim: Any, script: Any, outcome: Outcome) -> None:
    """Timeouts, SERVFAIL, REFUSED and errors are retried `retries` times, then are data."""
    zone = Zone()
    zone.set("fail.com", script)
    obs = await ask(await sim(zone), "fail.com", timeout=0.2, retries=2)
    assert obs.outcome is outcome
    assert obs.attempts == 3
    assert len(zone.queries("fail.com")) == 3
    if outcome is Outcome.SERVFAIL:
        assert obs.ede == ((22, "No Reachable Authority"),)


async def test_truncated_udp_falls_back_to_tcp(sim: Any) -> None:
    """A TC reply over UDP is asked again over TCP, and the full answer is used."""
    many = [f"151.101.{i}.{j}" for i in range(4) for j in range(1, 40)]
    zone = Zone()
    zone.set("big.com", answer(*many, truncate=True))
    obs = await ask(await sim(zone), "big.com")
    assert obs.outcome is Outcome.ANSWER
    assert obs.transport == "udp+tcp"
    assert len(obs.addresses) == len(many)
    assert [q.transport for q in zone.queries("big.com")] == ["udp", "tcp"]


async def test_tcp_transport(sim: Any) -> None:
    zone = Zone()
    zone.set("site.com", answer("151.101.1.1"))
    obs = await ask(await sim(zone), "site.com", transport=Transport.TCP)
    assert (obs.outcome, obs.transport) == (Outcome.ANSWER, "tcp")
    assert zone.queries("site.com")[0].transport == "tcp"


async def test_doh_transport(sim: Any, server_ssl: ssl.SSLContext, ca_file: Path) -> None:
    """DNS over HTTPS with RFC 8484 POST, trusting a test CA."""
    zone = Zone()
    zone.set("site.com", answer("151.101.1.1", "2a04:4e42::1"))
    zone.set("gone.com", nxdomain())
    server = await sim(zone, doh=server_ssl)
    async with aiohttp.ClientSession() as session:
        client = ResolverClient(spec_for(server, Transport.DOH, ca_file=ca_file), session=session)
        a = await client.query("site.com", "A")
        aaaa = await client.query("site.com", "AAAA")
        gone = await client.query("gone.com", "A")
    assert (a.outcome, a.addresses, a.transport) == (Outcome.ANSWER, ("151.101.1.1",), "doh")
    assert aaaa.addresses == ("2a04:4e42::1",)
    assert gone.outcome is Outcome.NXDOMAIN and gone.nx_label == "ordinary"


async def test_doh_untrusted_certificate_is_an_error(sim: Any, server_ssl: ssl.SSLContext) -> None:
    """Without the test CA the TLS handshake fails: an error outcome, never an answer."""
    zone = Zone()
    zone.set("site.com", answer("151.101.1.1"))
    server = await sim(zone, doh=server_ssl)
    async with aiohttp.ClientSession() as session:
        obs = await ResolverClient(spec_for(server, Transport.DOH, retries=0), session).query(
            "site.com", "A"
        )
    assert obs.outcome is Outcome.ERROR
    assert "certificate" in (obs.error or "").lower()


async def test_dot_transport(server_ssl: ssl.SSLContext, ca_file: Path) -> None:
    """DNS over TLS to a simulated resolver whose stream side speaks TLS."""
    zone = Zone()
    zone.set("site.com", answer("151.101.1.1"))
    async with SimResolver(zone, tls=server_ssl) as server:
        obs = await ask(server, "site.com", transport=Transport.DOT, ca_file=ca_file)
    assert (obs.outcome, obs.transport) == (Outcome.ANSWER, "dot")
    assert zone.queries("site.com")[0].transport == "dot"


async def test_rate_limit_is_honoured(sim: Any) -> None:
    """qps caps the rate of query starts for one resolver."""
    zone = Zone()
    for i in range(20):
        zone.set(f"n{i}.com", answer("151.101.1.1"))
    async with ResolverClient(spec_for(await sim(zone), qps=50, max_inflight=20)) as client:
        start = time.monotonic()
        await asyncio.gather(*(client.query(f"n{i}.com", "A") for i in range(20)))
        elapsed = time.monotonic() - start
    assert elapsed >= 19 / 50 * 0.95  # 20 starts, 1/50 s apart


async def test_max_inflight_is_honoured(sim: Any) -> None:
    """No more than max_inflight queries are outstanding at a resolver at once."""
    zone = Zone()
    for i in range(12):
        zone.set(f"n{i}.com", answer("151.101.1.1", delay=0.1))
    async with ResolverClient(spec_for(await sim(zone), max_inflight=3)) as client:
        start = time.monotonic()
        await asyncio.gather(*(client.query(f"n{i}.com", "A") for i in range(12)))
        assert time.monotonic() - start >= 0.4 * 0.95  # 12 queries, 3 at a time, 0.1 s each


async def test_rate_limiter_spacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter hands out start times 1/qps apart on a frozen clock."""
    limiter = RateLimiter(10, clock=lambda: 100.0)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(d: float) -> None:
        slept.append(round(d, 6))
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    for _ in range(3):
        await limiter.wait()
    assert slept == [0.1, 0.2]


async def test_nodata_helper(sim: Any) -> None:
    zone = Zone()
    zone.set("empty.com", nodata())
    obs = await ask(await sim(zone), "empty.com")
    assert obs.outcome is Outcome.NODATA and obs.addresses == ()


async def test_pool_shares_a_few_ports_and_fresh_asks_use_new_ones(sim: Any) -> None:
    """Fifty first attempts at once open the pool once and leave from its few ports, all
    answered; an ask with fresh=True (a re-ask of a national NXDOMAIN) leaves from a new one."""
    from nsdi_tracker.dns.transports.udp import POOL_SOCKETS

    zone = Zone()
    for i in range(50):
        zone.set(f"n{i}.com", answer(f"151.101.1.{i}"))
    async with ResolverClient(spec_for(await sim(zone), max_inflight=50)) as client:
        got = await asyncio.gather(*(client.query(f"n{i}.com", "A") for i in range(50)))
        assert [o.addresses for o in got] == [(f"151.101.1.{i}",) for i in range(50)]
        pooled = {q.client[1] for q in zone.queries()}
        assert len(pooled) == POOL_SOCKETS
        await client.query("n1.com", "A", fresh=True)
        assert zone.queries()[-1].client[1] not in pooled


async def test_rate_limit_holds_at_speed_through_the_pool(sim: Any) -> None:
    """At 2,000 qps with 200 in flight, 600 pooled queries still take at least 0.3 s: the
    achieved rate stays under the configured one."""
    zone = Zone()
    for i in range(600):
        zone.set(f"n{i}.com", answer("151.101.1.1"))
    spec = spec_for(await sim(zone), qps=2000, max_inflight=200)
    async with ResolverClient(spec) as client:
        start = time.monotonic()
        got = await asyncio.gather(*(client.query(f"n{i}.com", "A") for i in range(600)))
        elapsed = time.monotonic() - start
    assert all(o.outcome is Outcome.ANSWER for o in got)
    assert 600 / elapsed <= 2000 * 1.05, 600 / elapsed


async def test_rate_limit_holds_in_a_lane(sim: Any) -> None:
    """The sweep's path (a Lane sending pooled first attempts by callback): 600 jobs at
    2,000 qps with 200 in flight take at least 0.3 s, and every job is delivered once."""
    from nsdi_tracker.dns.probe import Lane

    zone = Zone()
    for i in range(600):
        zone.set(f"n{i}.com", answer("151.101.1.1"))
    spec = spec_for(await sim(zone), qps=2000, max_inflight=200)
    delivered: dict[int, Any] = {}
    finished = asyncio.get_running_loop().create_future()

    def deliver(token: Any, index: int, obs: Any) -> None:
        delivered[index] = obs
        if len(delivered) == 600:
            finished.set_result(None)

    async with ResolverClient(spec) as client:
        lane = Lane(client, deliver, finished.set_exception)
        await lane.open()
        assert lane.pooled
        start = time.monotonic()
        lane.jobs.extend((None, i, make_query(f"n{i}.com", "A", qid=0)) for i in range(600))
        lane.pump()
        await asyncio.wait_for(finished, 10)
        elapsed = time.monotonic() - start
    assert all(o.outcome is Outcome.ANSWER for o in delivered.values())
    assert 600 / elapsed <= 2000 * 1.05, 600 / elapsed
    assert client.counters.queries == 600
