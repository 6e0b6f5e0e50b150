"""The fast codec against dnspython: the same query bytes, the same Summary of every reply it
accepts, and no crash (and no different answer) on malformed or truncated messages."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsdi_tracker import fastwire
from nsdi_tracker.model import Authority, Flags, Observation, Outcome, Summary
from nsdi_tracker.wire import Parsed, _parse_slow, make_query, observe, parse_reply, summarize

LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
NAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
RCODES = [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.REFUSED,
          dns.rcode.NOTIMP, dns.rcode.BADVERS]  # fmt: skip


@given(NAMES, st.sampled_from(["A", "AAAA"]), st.integers(0, 65535))
def test_query_bytes_equal_dnspython(name: str, qtype: str, qid: int) -> None:
    """The hot path's query is byte for byte what dnspython sends (EDNS 1232, DO, RD)."""
    ours = make_query(name, qtype, qid=qid)
    theirs = dns.message.make_query(name, qtype, use_edns=0, payload=1232, want_dnssec=True)
    theirs.id = qid
    assert ours.wire == theirs.to_wire()


def _case(name: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in name)


@st.composite
def replies(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """A reply to (qname, qtype) as a resolver might send it: CNAME chains, addresses of both
    families, duplicates, mixed case, SOA/NS/NSEC in authority, glue, RRSIGs, EDE."""
    qname = draw(NAMES)
    qtype = draw(st.sampled_from(["A", "AAAA"]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.set_rcode(draw(st.sampled_from(RCODES)))
    for flag in (dns.flags.AA, dns.flags.RA, dns.flags.AD):
        if draw(st.booleans()):
            reply.flags |= flag
        else:
            reply.flags &= ~flag
    owner = qname
    for _ in range(draw(st.integers(0, 3))):  # a CNAME chain
        target = draw(NAMES)
        reply.answer.append(dns.rrset.from_text(_case(owner, rng) + ".", rng.randint(0, 86400),
                                                "IN", "CNAME", target + "."))  # fmt: skip
        owner = target
    for _ in range(draw(st.integers(0, 4))):
        rtype = draw(st.sampled_from(["A", "AAAA", qtype]))
        addr = (f"{rng.randrange(256)}.{rng.randrange(256)}.0.{rng.randrange(4)}" if rtype == "A"
                else f"2001:db8::{rng.randrange(4):x}")  # fmt: skip
        where = owner if rng.random() < 0.8 else draw(NAMES)
        reply.answer.append(dns.rrset.from_text(_case(where, rng) + ".", rng.randint(0, 3600), "IN",
                                                rtype, addr))  # fmt: skip
    if draw(st.booleans()):
        sig = f"{qtype} 8 2 300 20300101000000 20200101000000 1 {owner}. AAAA"
        reply.answer.append(dns.rrset.from_text(owner + ".", 300, "IN", "RRSIG", sig))
    zone = owner.split(".", 1)[-1] if "." in owner else owner
    if draw(st.booleans()):
        reply.authority.append(dns.rrset.from_text(zone + ".", 300, "IN", "SOA",
                               f"ns.{zone}. host.{zone}. 1 2 3 4 5"))  # fmt: skip
    if draw(st.booleans()):
        reply.authority.append(dns.rrset.from_text(zone + ".", 300, "IN", "NS", f"ns.{zone}."))
        reply.additional.append(dns.rrset.from_text(f"ns.{zone}.", 300, "IN", "A", "192.0.2.53"))
    if draw(st.booleans()):
        reply.authority.append(
            dns.rrset.from_text(zone + ".", 300, "IN", "NSEC", f"z.{zone}. A NS")
        )
    options = []
    if draw(st.booleans()):
        options.append(dns.edns.EDEOption(draw(st.integers(0, 30)), draw(st.sampled_from(
            ["", "blocked", "Заблокировано", "x" * 40]))))  # fmt: skip
    reply.use_edns(0, payload=1232, options=options)
    return qname, qtype, reply.to_wire()


def _summaries(qname: str, qtype: str, wire: bytes) -> tuple[object, Parsed]:
    query = make_query(qname, qtype, qid=int.from_bytes(wire[:2], "big"))
    return fastwire.read(query, wire), _parse_slow(query, wire)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
def test_fast_reader_agrees_with_dnspython(case: tuple[str, str, bytes]) -> None:
    """Whatever the fast reader accepts, dnspython reads to the identical Summary."""
    fast, slow = _summaries(*case)
    if isinstance(fast, Summary):
        assert slow.summary == fast
    else:
        assert fast == fastwire.FALLBACK or isinstance(fast, fastwire.Mismatch)


def test_the_fast_reader_takes_the_common_replies() -> None:
    """The fast path is the path: it reads the replies a sweep gets without falling back."""
    rng = random.Random(7)
    taken = 0
    for _ in range(300):
        case = _common(rng)
        fast, slow = _summaries(*case)
        assert isinstance(fast, Summary), case
        assert slow.summary == fast
        taken += 1
    assert taken == 300


def _common(rng: random.Random) -> tuple[str, str, bytes]:
    qname = f"n{rng.randrange(10**6):07d}.bench.test"
    qtype = rng.choice(["A", "AAAA"])
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, want_dnssec=True)
    reply = dns.message.make_response(query)
    kind = rng.choice(["answer", "nodata", "nxdomain", "cname"])
    if kind == "nxdomain":
        reply.set_rcode(dns.rcode.NXDOMAIN)
    if kind in ("answer", "cname") and qtype == "A":
        owner = qname
        if kind == "cname":
            reply.answer.append(
                dns.rrset.from_text(qname + ".", 60, "IN", "CNAME", "edge.cdn.net.")
            )
            owner = "edge.cdn.net"
        reply.answer.append(dns.rrset.from_text(owner + ".", 60, "IN", "A", "10.1.2.3", "10.1.2.4"))
    if kind != "answer":
        reply.authority.append(dns.rrset.from_text("bench.test.", 300, "IN", "SOA",
                               "ns.bench.test. h.bench.test. 1 2 3 4 5"))  # fmt: skip
    reply.use_edns(0, payload=1232)
    return qname, qtype, reply.to_wire()


def test_malformed_and_truncated_messages() -> None:
    """Every truncation and thousands of random corruptions of real replies: the reader never
    raises, and never accepts a message dnspython reads differently."""
    rng = random.Random(2026)
    seen_fast = disagree = 0
    for _ in range(60):
        qname, qtype, wire = _common(rng)
        variants = [wire[:n] for n in range(len(wire))]
        for _ in range(40):
            b = bytearray(wire)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            variants.append(bytes(b))
        for data in variants:
            query = make_query(qname, qtype, qid=int.from_bytes(wire[:2], "big"))
            parsed = parse_reply(query, data)  # must not raise
            fast = fastwire.read(query, data)
            if isinstance(fast, Summary):
                seen_fast += 1
                slow = _parse_slow(query, data)
                disagree += slow.summary != fast
                assert slow.summary == fast, data.hex()
            assert parsed.summary is None or isinstance(parsed.summary, Summary)
    assert seen_fast > 100 and disagree == 0


def test_summarize_matches_on_an_unusual_reply() -> None:
    """What the fast reader leaves to dnspython (an escaped label) is still summarised."""
    query = make_query("odd.example", "A", qid=9)
    msg = dns.message.make_response(dns.message.from_wire(query.wire))
    msg.answer.append(dns.rrset.from_text("odd.example.", 60, "IN", "CNAME", "we\\.ird.example."))
    wire = msg.to_wire()
    assert fastwire.read(query, wire) == fastwire.FALLBACK
    parsed = parse_reply(query, wire)
    assert parsed.slow and parsed.summary == summarize(msg, "odd.example", "A")
    assert parsed.summary.cname_chain == ("we\\.ird.example",)


def test_an_observation_keeps_every_field_of_its_summary() -> None:
    """observe() builds an Observation from a Summary's fields in order: the two records
    must keep those fields in the same order, under the same names."""
    assert Observation._fields[7:14] == Summary._fields
    summary = Summary("NXDOMAIN", Flags(aa=True), (), (), 60, Authority(soa=True), ((3, "x"),))
    obs = observe(summary, resolver="r", qname="n.example", qtype="A", transport="udp")
    assert tuple(getattr(obs, f) for f in Summary._fields) == summary
    assert (obs.outcome, obs.error, obs.ignored, obs.reasked) == (Outcome.NXDOMAIN, None, 0, False)
    assert observe(summary._replace(rcode="BADVERS"), resolver="r", qname="n", qtype="A",
                   transport="udp").error == "rcode BADVERS"  # fmt: skip
