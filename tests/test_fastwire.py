"""The fast codec against dnspython: the same query bytes, the same Summary of every reply it
accepts, and no crash (and no different answer) on malformed or truncated messages."""

from __future__ import annotations

import random
import struct

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

from nsdi_tracker.core.model import Authority, Flags, Observation, Outcome, Summary
from nsdi_tracker.dns import fastwire
from nsdi_tracker.dns.wire import make_query, observe, parse_reply, parse_slow, summarize

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
    if draw(st.integers(0, 9)) == 0:
        reply.flags |= dns.flags.TC
    owner = qname
    for _ in range(draw(st.integers(0, 3))):  # a CNAME chain, now and then to the root
        target = draw(st.one_of(NAMES, st.just("")))
        reply.answer.append(dns.rrset.from_text(_case(owner, rng) + ".", rng.randint(0, 86400),
                                                "IN", "CNAME", target + "."))  # fmt: skip
        owner = target or "after.root.invalid"  # nothing follows the root: a dead end
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
    asked = qname if draw(st.integers(0, 9)) else draw(NAMES)  # a reply to another question
    return asked, qtype, reply.to_wire()


TRUNCATED, FALLBACK = "truncated", "fallback"


def _fast(query: fastwire.Query, wire: bytes) -> object:
    """What the fast reader decides: a Summary, TRUNCATED, a NotOurs (mismatch) or FALLBACK."""
    try:
        return fastwire.read(query, wire)
    except fastwire.Truncated:
        return TRUNCATED
    except fastwire.NotOurs as exc:
        return exc
    except fastwire.Unreadable:
        return FALLBACK


def _slow(query: fastwire.Query, wire: bytes) -> object:
    """What dnspython decides: a Summary, TRUNCATED or a NotOurs (mismatch)."""
    try:
        return parse_slow(query, wire)
    except fastwire.Truncated:
        return TRUNCATED
    except fastwire.NotOurs as exc:
        return exc


def _summaries(qname: str, qtype: str, wire: bytes) -> tuple[object, object]:
    query = make_query(qname, qtype, qid=int.from_bytes(wire[:2], "big"))
    return _fast(query, wire), _slow(query, wire)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
def test_fast_reader_agrees_with_dnspython(case: tuple[str, str, bytes]) -> None:
    """Whatever the fast reader decides, dnspython decides the same (see _agree)."""
    _agree(*_summaries(*case))


def _agree(fast: object, slow: object) -> None:
    """The fast reader's answer and dnspython's are the same: the identical Summary, both
    truncated (ask again over TCP), or both a mismatch; FALLBACK leaves it to dnspython."""
    if isinstance(fast, Summary):
        assert slow == fast
    elif fast == TRUNCATED:
        assert slow == TRUNCATED
    elif isinstance(fast, fastwire.NotOurs):
        assert isinstance(slow, fastwire.NotOurs), slow
    else:
        assert fast == FALLBACK


def _pointers(wire: bytes) -> list[int]:
    """Where the message holds something that reads as a backward compression pointer."""
    return [
        i for i in range(12, len(wire) - 1)
        if wire[i] >= 0xC0 and ((wire[i] & 0x3F) << 8 | wire[i + 1]) < i
    ]  # fmt: skip


def _restructured(wire: bytes, qlen: int, rng: random.Random) -> bytes:
    """One structure-aware change: a pointer sent forward, onto itself, into a label or to
    another pointer; TC flipped; a section count off by one; a label length made a bad
    label type or one too long; the question changed."""
    b = bytearray(wire)
    sites = _pointers(wire)
    kind = rng.randrange(5)
    if kind == 0 and sites:
        i = rng.choice(sites)
        old = (b[i] & 0x3F) << 8 | b[i + 1]
        target = rng.choice([i, i + 2, old + 1, old - 1, 12, rng.choice(sites),
                             rng.randrange(len(b))])  # fmt: skip
        target = max(0, min(target, 0x3FFF))
        b[i], b[i + 1] = 0xC0 | target >> 8, target & 0xFF
    elif kind == 1:
        b[2] ^= 0x02
    elif kind == 2:
        at = rng.choice((6, 8, 10))
        count = max(0, int.from_bytes(b[at : at + 2], "big") + rng.choice((-1, 1)))
        b[at : at + 2] = count.to_bytes(2, "big")
    elif kind == 3:
        at = 12
        for _ in range(rng.randrange(3)):
            if b[at] == 0:
                break
            at += 1 + b[at]
        b[at] = rng.choice((b[at] + 1, 0x40 | b[at], 0x80, 0xC0 | 12))
    else:
        b[13 + rng.randrange(max(qlen - 2, 1))] ^= 0x01
    return bytes(b)


def _chained(qname: str, hops: int) -> bytes:
    """A reply whose additional section holds `hops` glue records, each owner a pointer to
    the one before (the first to the question): the last owner follows `hops` pointers."""
    query = dns.message.make_query(qname, "A", use_edns=0, payload=1232, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(qname + ".", 60, "IN", "A", "192.0.2.1"))
    reply.use_edns(0, payload=1232)
    wire = bytearray(reply.to_wire())
    previous = 12
    for i in range(hops):
        here = len(wire)
        wire += bytes([0xC0 | previous >> 8, previous & 0xFF])
        wire += struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, i % 256])
        previous = here
    arcount = int.from_bytes(wire[10:12], "big") + hops
    wire[10:12] = arcount.to_bytes(2, "big")
    return bytes(wire)


def test_structure_aware_mutations_find_no_disagreement() -> None:
    """Pointer chains up to and past dnspython's 16 hops, and thousands of structure-aware
    changes (pointers, TC, counts, label types, the question) of real replies, CNAMEs to the
    root and replies to another question among them: the two readers always agree. Before
    issue 14 this found fast readings of messages dnspython rejects (compression checked less
    strictly), TC replies to another question taken as truncation, and '' against '.'."""
    for hops in range(1, 24):
        wire = _chained("chain.example", hops)
        query = make_query("chain.example", "A", qid=int.from_bytes(wire[:2], "big"))
        fast = _fast(query, wire)
        _agree(fast, _slow(query, wire))
        assert isinstance(fast, Summary) == (hops <= 16), hops
    rng = random.Random(14)
    kinds = {"summary": 0, "truncated": 0, "mismatch": 0}
    for n in range(400):
        qname, qtype, wire = _common(rng)
        if n % 4 == 0:  # a CNAME to the root, compressed against the question
            query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232,
                                           want_dnssec=True)  # fmt: skip
            reply = dns.message.make_response(query)
            reply.answer.append(dns.rrset.from_text(qname + ".", 60, "IN", "CNAME", "."))
            reply.use_edns(0, payload=1232)
            wire = reply.to_wire()
        query = make_query(qname, qtype, qid=int.from_bytes(wire[:2], "big"))
        for data in [wire] + [_restructured(wire, len(qname) + 2, rng) for _ in range(25)]:
            fast = _fast(query, data)
            _agree(fast, _slow(query, data))
            if isinstance(fast, Summary):
                kinds["summary"] += 1
            elif fast == TRUNCATED:
                kinds["truncated"] += 1
            elif isinstance(fast, fastwire.NotOurs):
                kinds["mismatch"] += 1
    assert min(kinds.values()) > 50, kinds  # every class of answer was put to the test


def test_the_fast_reader_takes_the_common_replies() -> None:
    """The fast path is the path: it reads the replies a sweep gets without falling back."""
    rng = random.Random(7)
    taken = 0
    for _ in range(300):
        case = _common(rng)
        fast, slow = _summaries(*case)
        assert isinstance(fast, Summary), case
        assert slow == fast
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
            try:  # must not raise anything but its two answers: not ours, or truncated
                parsed: Summary | None = parse_reply(query, data)
            except (fastwire.NotOurs, fastwire.Truncated):
                parsed = None
            fast = _fast(query, data)
            if isinstance(fast, Summary):
                seen_fast += 1
                slow = _slow(query, data)
                disagree += slow != fast
                assert slow == fast, data.hex()
            assert parsed is None or isinstance(parsed, Summary)
    assert seen_fast > 100 and disagree == 0


def test_summarize_matches_on_an_unusual_reply() -> None:
    """What the fast reader leaves to dnspython (an escaped label) is still summarised."""
    query = make_query("odd.example", "A", qid=9)
    msg = dns.message.make_response(dns.message.from_wire(query.wire))
    msg.answer.append(dns.rrset.from_text("odd.example.", 60, "IN", "CNAME", "we\\.ird.example."))
    wire = msg.to_wire()
    assert _fast(query, wire) == FALLBACK
    parsed = parse_reply(query, wire)
    assert parsed == summarize(msg, "odd.example", "A")
    assert parsed.cname_chain == ("we\\.ird.example",)


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
