"""DNS wire format: build a query, read a reply into an Observation. No sockets here."""

from __future__ import annotations

from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from nsdi_tracker.model import Authority, Flags, Observation, Outcome

EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: avoids IP fragmentation
_MAX_CHAIN = 16

_RCODE_OUTCOME = {
    dns.rcode.NXDOMAIN: Outcome.NXDOMAIN,
    dns.rcode.SERVFAIL: Outcome.SERVFAIL,
    dns.rcode.REFUSED: Outcome.REFUSED,
}


def make_query(qname: str, qtype: str, *, zero_id: bool = False) -> dns.message.QueryMessage:
    """A recursive query with EDNS and the DO bit, so a denial proof (NSEC/NSEC3) can come back.

    DoH asks with ID 0 (RFC 8484 section 4.1) so that HTTP caches can share answers.
    """
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=True)
    if zero_id:
        query.id = 0
    return query


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a datagram or stream message turned out to be, relative to the query it may answer."""

    reply: dns.message.Message | None  # a reply to our query, or None
    truncated: bool = False  # TC set: ask again over TCP
    mismatch: str | None = None  # why this message was ignored


def parse_reply(query: dns.message.Message, wire: bytes) -> Parsed:
    """Accept a message only if it is a response to `query`: same ID, opcode and question."""
    try:
        reply = dns.message.from_wire(wire, raise_on_truncation=True)
    except dns.message.Truncated as exc:
        partial = exc.message()  # type: ignore[no-untyped-call]
        if partial is not None and partial.id == query.id and partial.flags & dns.flags.QR:
            return Parsed(reply=None, truncated=True)
        return Parsed(reply=None, mismatch="truncated reply that does not match the query")
    except (dns.exception.DNSException, ValueError, IndexError, UnicodeError) as exc:
        return Parsed(reply=None, mismatch=f"malformed: {type(exc).__name__}")
    if not query.is_response(reply):
        return Parsed(reply=None, mismatch="id, opcode or question does not match the query")
    return Parsed(reply=reply)


def observe(
    reply: dns.message.Message,
    *,
    resolver: str,
    qname: str,
    qtype: str,
    transport: str,
    attempts: int = 1,
    latency_ms: float | None = None,
    ignored: int = 0,
) -> Observation:
    """Turn an accepted reply into an observation with every piece of evidence kept."""
    rcode = reply.rcode()
    flags = Flags(
        aa=bool(reply.flags & dns.flags.AA),
        tc=bool(reply.flags & dns.flags.TC),
        ra=bool(reply.flags & dns.flags.RA),
        ad=bool(reply.flags & dns.flags.AD),
    )
    addresses, chain, min_ttl = _follow(reply, dns.name.from_text(qname), qtype)
    if rcode == dns.rcode.NOERROR:
        outcome = Outcome.ANSWER if addresses else Outcome.NODATA
        error = None
    else:
        outcome = _RCODE_OUTCOME.get(rcode, Outcome.ERROR)
        error = None if outcome is not Outcome.ERROR else f"rcode {dns.rcode.to_text(rcode)}"
    return Observation(
        resolver=resolver,
        qname=qname,
        qtype=qtype,
        outcome=outcome,
        transport=transport,
        attempts=attempts,
        latency_ms=latency_ms,
        rcode=dns.rcode.to_text(rcode),
        flags=flags,
        addresses=addresses,
        cname_chain=chain,
        min_ttl=min_ttl,
        authority=_authority(reply),
        ede=_ede(reply),
        error=error,
        ignored=ignored,
    )


def _follow(
    reply: dns.message.Message, qname: dns.name.Name, qtype: str
) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """Follow the CNAME chain from qname through the answer section to the addresses."""
    rdtype = dns.rdatatype.from_text(qtype)
    current = qname
    chain: list[str] = []
    ttls: list[int] = []
    for _ in range(_MAX_CHAIN):
        found = _rrset(reply, current, rdtype)
        if found is not None:
            ttls.append(found.ttl)
            addresses = tuple(sorted({rd.to_text() for rd in found}))
            return addresses, tuple(chain), min(ttls)
        alias = _rrset(reply, current, dns.rdatatype.CNAME)
        if alias is None:
            break
        ttls.append(alias.ttl)
        current = alias[0].target
        chain.append(current.to_text(omit_final_dot=True).lower())
    return (), tuple(chain), (min(ttls) if ttls else None)


def _rrset(reply: dns.message.Message, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    for rrset in reply.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def _authority(reply: dns.message.Message) -> Authority:
    soa_zone = None
    nsec = False
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and soa_zone is None:
            soa_zone = rrset.name.to_text(omit_final_dot=True).lower() or "."
        elif rrset.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            nsec = True
    return Authority(soa=soa_zone is not None, nsec=nsec, soa_zone=soa_zone)


def _ede(reply: dns.message.Message) -> tuple[tuple[int, str], ...]:
    return tuple(
        (int(opt.code), opt.text or "")
        for opt in reply.options
        if isinstance(opt, dns.edns.EDEOption)
    )
