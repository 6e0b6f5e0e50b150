"""DNS wire format: build a query, read a reply into an Observation. No sockets here.

The hot path is fastwire; dnspython reads what fastwire leaves to it.
"""

from __future__ import annotations

import functools
import secrets
from typing import Final

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from nsdi_tracker.core.model import Authority, Flags, Observation, Outcome, Summary, new_record
from nsdi_tracker.dns import fastwire
from nsdi_tracker.dns.fastwire import NotOurs, Query, Truncated, Unreadable

EDNS_PAYLOAD: Final = fastwire.EDNS_PAYLOAD  # the DNS Flag Day 2020 size: no IP fragmentation
_MAX_CHAIN: Final = 16

_RCODE_OUTCOME: Final = {
    "NXDOMAIN": Outcome.NXDOMAIN,
    "SERVFAIL": Outcome.SERVFAIL,
    "REFUSED": Outcome.REFUSED,
}


def make_query(qname: str, qtype: str, *, qid: int | None = None, zero_id: bool = False) -> Query:
    """A recursive query with EDNS and the DO bit, so a denial proof (NSEC/NSEC3) can come back.

    DoH asks with ID 0 (RFC 8484 section 4.1) so that HTTP caches can share answers. Built by
    fastwire (the same bytes dnspython would send) unless the name needs dnspython's encoder.
    """
    ident = 0 if zero_id else (qid if qid is not None else secrets.randbelow(65536))
    rdtype = fastwire.QTYPES.get(qtype) or dns.rdatatype.from_text(qtype)
    plain = _plain(qname)
    if plain is not None:
        key, name = plain
        data = fastwire.build_query(ident, name, rdtype)
        fields = (ident, qname, qtype, rdtype, key, data, data[12 : 16 + len(name)])
        return new_record(Query, fields)  # type: ignore[no-any-return]
    message = dns.message.make_query(
        qname, qtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=True
    )
    message.id = ident
    data = message.to_wire()
    key = message.question[0].name.to_text(omit_final_dot=True).lower().encode()
    return Query(ident, qname, qtype, rdtype, key, data, fastwire.question_of(data))


@functools.lru_cache(maxsize=1024)
def _plain(qname: str) -> tuple[bytes, bytes] | None:
    """(fastwire's key, the wire name) of a lower-case hostname, or None when the name needs
    dnspython's encoder. Cached: a name is asked for A and AAAA on every resolver in a row."""
    try:
        key = qname.rstrip(".").encode("ascii")
        if key != key.lower() or not fastwire.SAFE_NAME.issuperset(key):
            return None
        return key, fastwire.encode_name(qname)
    except (ValueError, UnicodeError):
        return None


def parse_reply(query: Query, wire: bytes, qid: int = -1) -> Summary:
    """The Summary of a message that is a response to `query` (same ID, opcode and question;
    the ID `qid` when the query went out with one of its own, as the socket pool sends
    them); raises NotOurs for any other message and Truncated for a TC reply to our question."""
    try:
        return fastwire.read(query, wire, qid)
    except Unreadable:
        return parse_slow(query if qid < 0 else query._replace(id=qid), wire)


def parse_slow(query: Query, wire: bytes) -> Summary:
    """parse_reply through dnspython alone: what the fast reader leaves to it."""
    try:
        reply = dns.message.from_wire(wire, raise_on_truncation=True)
    except dns.message.Truncated as exc:
        partial = exc.message()  # type: ignore[no-untyped-call]
        # Truncated, and to our question: ask again over TCP. A TC reply to another question
        # is a mismatch, as the fast reader says (one with no question cannot say otherwise).
        if partial is not None and (
            _answers(partial, query) if partial.question else _ours(partial, query)
        ):
            raise Truncated from None
        raise NotOurs("truncated reply that does not match the query") from None
    except (dns.exception.DNSException, ValueError, IndexError, UnicodeError) as exc:
        raise NotOurs(f"malformed: {type(exc).__name__}") from None
    if not _answers(reply, query):
        raise NotOurs("id, opcode or question does not match the query")
    return summarize(reply, query.qname, query.qtype)


def _ours(reply: dns.message.Message, query: Query) -> bool:
    return reply.id == query.id and bool(reply.flags & dns.flags.QR) and reply.opcode() == 0


def _answers(reply: dns.message.Message, query: Query) -> bool:
    if not _ours(reply, query):
        return False
    if len(reply.question) != 1:
        return False
    q = reply.question[0]
    name = q.name.to_text(omit_final_dot=True).lower().encode()
    return name == query.qname_key and q.rdtype == query.rdtype and q.rdclass == 1


def summarize(reply: dns.message.Message, qname: str, qtype: str) -> Summary:
    """The Summary of a reply parsed by dnspython (the reference for fastwire)."""
    addresses, chain, min_ttl = _follow(reply, dns.name.from_text(qname), qtype)
    return Summary(
        rcode=dns.rcode.to_text(reply.rcode()),
        flags=Flags(
            aa=bool(reply.flags & dns.flags.AA),
            tc=bool(reply.flags & dns.flags.TC),
            ra=bool(reply.flags & dns.flags.RA),
            ad=bool(reply.flags & dns.flags.AD),
        ),
        addresses=addresses,
        cname_chain=chain,
        min_ttl=min_ttl,
        authority=_authority(reply),
        ede=_ede(reply),
    )


def observe(
    reply: Summary,
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
    return observation(
        reply, outcome_of(reply), resolver, qname, qtype, transport, attempts, latency_ms, ignored
    )


def outcome_of(reply: Summary) -> Outcome:
    """What a reply's rcode and addresses say: an answer, NODATA, NXDOMAIN, SERVFAIL..."""
    if reply.rcode == "NOERROR":
        return Outcome.ANSWER if reply.addresses else Outcome.NODATA
    return _RCODE_OUTCOME.get(reply.rcode, Outcome.ERROR)


def observation(
    reply: Summary,
    outcome: Outcome,
    resolver: str,
    qname: str,
    qtype: str,
    transport: str,
    attempts: int,
    latency_ms: float | None,
    ignored: int,
) -> Observation:
    """`observe` with the outcome known, positionally: the hot path's spelling. Observation
    holds a Summary's fields, in its order, after its own first seven: it is made from one
    tuple (core.model.new_record; tests/test_fastwire.py holds the field order)."""
    error = f"rcode {reply.rcode}" if outcome is Outcome.ERROR else None
    fields = (
        resolver, qname, qtype, outcome, transport, attempts, latency_ms, reply[0], reply[1],
        reply[2], reply[3], reply[4], reply[5], reply[6], error, ignored, False,
    )  # fmt: skip
    return new_record(Observation, fields)  # type: ignore[no-any-return]


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
