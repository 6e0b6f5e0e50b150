"""What a simulated resolver answers, per name: scripts, and the zone that holds them."""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class Noise(StrEnum):
    """Datagrams sent before (or instead of) the real reply, to test what a client accepts."""

    MALFORMED = "malformed"  # bytes that are no DNS message
    WRONG_ID = "wrong-id"  # the right answer with another message ID
    WRONG_QUESTION = "wrong-question"  # a reply for another name
    OTHER_PORT = "other-port"  # the right answer, sent from another UDP port


@dataclass(frozen=True, slots=True)
class Script:
    """One behaviour. Addresses are split by family for A and AAAA."""

    rcode: int = dns.rcode.NOERROR
    addresses: tuple[str, ...] = ()
    cname: tuple[str, ...] = ()  # qname -> cname[0] -> ... -> addresses at the last one
    soa: bool = True  # SOA in AUTHORITY on NXDOMAIN / NODATA
    aa: bool = False
    nsec: bool = False  # an NSEC record in AUTHORITY, as a signed zone's denial
    ede: tuple[tuple[int, str], ...] = ()
    ttl: int = 300
    delay: float = 0.0
    noise: tuple[Noise, ...] = ()
    silent: bool = False  # send no real reply (the noise is still sent)
    truncate: bool = False  # over UDP: TC=1 and no records; over TCP/DoH: the full reply


# Positive controls that every simulated resolver answers, as the shipped controls' real
# addresses, for configs that point at simulators (tests, `python -m nsdi_tracker.sim`, demo).
CONTROL_ADDRESSES = {"ya.ru": "5.255.255.242", "vk.com": "87.240.132.72"}


def answering(addresses: dict[str, str], zone: Zone | None = None) -> Zone:
    """`zone` (or a new one) answering each name with its one address."""
    zone = zone if zone is not None else Zone()
    for name, addr in addresses.items():
        zone.set(name, answer(addr))
    return zone


def answer(*addresses: str, cname: tuple[str, ...] = (), ttl: int = 300, **kw: object) -> Script:
    return Script(addresses=addresses, cname=cname, ttl=ttl, **kw)  # type: ignore[arg-type]


def nxdomain(*, soa: bool = True, aa: bool = False, nsec: bool = False, **kw: object) -> Script:
    return Script(rcode=dns.rcode.NXDOMAIN, soa=soa, aa=aa, nsec=nsec, **kw)  # type: ignore[arg-type]


def nodata(**kw: object) -> Script:
    return Script(**kw)  # type: ignore[arg-type]


def rcode(code: int, **kw: object) -> Script:
    return Script(rcode=code, **kw)  # type: ignore[arg-type]


def silent(**kw: object) -> Script:
    return Script(silent=True, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Query:
    """A query the simulated resolver received, for tests to assert on."""

    qname: str
    qtype: str
    transport: str
    client: tuple[str, int]


@dataclass
class Zone:
    """Scripts per name (optionally per type); names not scripted get `default`."""

    default: Script = field(default_factory=nxdomain)
    outage: Script | None = None  # when set, every name gets this (a resolver going dark)
    scripts: dict[tuple[str, str | None], Script] = field(default_factory=dict)
    once: dict[tuple[str, str | None], deque[Script]] = field(default_factory=dict)
    log: list[Query] = field(default_factory=list)

    def set(self, name: str, script: Script, qtype: str | None = None) -> None:
        self.scripts[(_key(name), qtype)] = script

    def push(self, name: str, script: Script, qtype: str | None = None) -> None:
        """A one-shot script, used before the standing one (for retries and re-asks)."""
        self.once.setdefault((_key(name), qtype), deque()).append(script)

    def script_for(self, qname: str, qtype: str) -> Script:
        if self.outage is not None:
            return self.outage
        name = _key(qname)
        for key in ((name, qtype), (name, None)):
            pending = self.once.get(key)
            if pending:
                return pending.popleft()
        for key in ((name, qtype), (name, None)):
            if key in self.scripts:
                return self.scripts[key]
        return self.default

    def queries(self, name: str | None = None, transport: str | None = None) -> list[Query]:
        return [
            q
            for q in self.log
            if (name is None or q.qname == _key(name))
            and (transport is None or q.transport == transport)
        ]


def build_reply(
    query: dns.message.Message, script: Script, *, truncate: bool
) -> dns.message.Message:
    """The reply a recursive resolver following `script` sends to `query`."""
    reply = dns.message.make_response(query, recursion_available=True)
    reply.set_rcode(dns.rcode.Rcode.make(script.rcode))
    if script.aa:
        reply.flags |= dns.flags.AA
    if script.ede:
        options: list[dns.edns.Option] = [
            dns.edns.EDEOption(dns.edns.EDECode.make(code), text or None)
            for code, text in script.ede
        ]
        reply.use_edns(0, payload=1232, options=options)
    if truncate:
        reply.flags |= dns.flags.TC
        return reply
    question = query.question[0]
    rdtype = question.rdtype
    owner = question.name
    if script.rcode == dns.rcode.NOERROR or script.cname:
        for target in script.cname:
            name = dns.name.from_text(target)
            reply.answer.append(
                dns.rrset.from_text(owner, script.ttl, "IN", "CNAME", name.to_text())
            )
            owner = name
        wanted = _family(rdtype)
        addrs = [
            a for a in script.addresses if wanted and ipaddress.ip_address(a).version == wanted
        ]
        if addrs and script.rcode == dns.rcode.NOERROR:
            reply.answer.append(
                dns.rrset.from_text(owner, script.ttl, "IN", dns.rdatatype.to_text(rdtype), *addrs)
            )
    negative = script.rcode == dns.rcode.NXDOMAIN or (
        script.rcode == dns.rcode.NOERROR and not _has(reply, rdtype)
    )
    if negative and script.soa:
        zone = _parent(owner)
        reply.authority.append(
            dns.rrset.from_text(
                zone, 900, "IN", "SOA",
                f"ns1.{zone.to_text()} hostmaster.{zone.to_text()} 1 1800 900 604800 86400",
            )
        )  # fmt: skip
    if negative and script.nsec:
        reply.authority.append(
            dns.rrset.from_text(_parent(owner), 900, "IN", "NSEC", f"zzz.{_parent(owner)} NS SOA")
        )
    return reply


def _has(reply: dns.message.Message, rdtype: int) -> bool:
    return any(r.rdtype == rdtype for r in reply.answer)


def _family(rdtype: int) -> int | None:
    if rdtype == dns.rdatatype.A:
        return 4
    return 6 if rdtype == dns.rdatatype.AAAA else None


def _parent(name: dns.name.Name) -> dns.name.Name:
    """The zone a negative answer's SOA belongs to: the name's parent (the TLD at least)."""
    return name.parent() if len(name.labels) > 2 else name


def _key(name: str) -> str:
    return name.lower().rstrip(".")
