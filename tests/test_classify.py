"""Every classification rule, table-driven, and properties that must hold for any answers."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsdi_tracker.core.model import (
    Authority,
    Consensus,
    Flags,
    NxLabel,
    Observation,
    Outcome,
    Role,
    Verdict,
)
from nsdi_tracker.judge.classify import (
    Health,
    NameView,
    ReferenceView,
    _prefix,
    combine,
    connectivity_ok,
    consistent,
    headline,
    health,
    is_bogon,
    judge,
    reference_view,
)

V = Verdict
OK = Health("r", Role.NATIONAL, 4, 4)
REF_EXISTS = ReferenceView(Consensus.EXISTS, frozenset({"142.250.74.46"}))
REF_EXISTS_NO_ADDR = ReferenceView(Consensus.EXISTS)
REF_NONE = ReferenceView(Consensus.NONEXISTENT)
REF_UNKNOWN = ReferenceView(Consensus.UNKNOWN)


def view(outcome: Outcome, *addrs: str, label: NxLabel | None = None) -> NameView:
    return NameView(outcome, frozenset(addrs), label)


def obs(
    outcome: Outcome, *addrs: str, qtype: str = "A", soa: bool = True, aa: bool = False
) -> Observation:
    return Observation(
        resolver="r", qname="x.com", qtype=qtype, outcome=outcome, transport="udp",
        addresses=addrs, flags=Flags(aa=aa), authority=Authority(soa=soa),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("v", "ref", "expected"),
    [
        (view(Outcome.ANSWER, "142.250.74.46"), REF_EXISTS, V.PRESENT),
        (view(Outcome.ANSWER, "142.250.74.99"), REF_EXISTS, V.PRESENT),  # same /24
        (view(Outcome.ANSWER, "95.100.1.10"), REF_EXISTS, V.DIFFERS),  # CDN elsewhere
        (view(Outcome.ANSWER, "95.100.1.10"), REF_EXISTS_NO_ADDR, V.PRESENT),
        (view(Outcome.ANSWER, "95.100.1.10"), REF_UNKNOWN, V.PRESENT),
        (view(Outcome.ANSWER, "95.100.1.10"), REF_NONE, V.TAMPERED),
        (view(Outcome.ANSWER, "10.0.0.1"), REF_EXISTS, V.TAMPERED),
        (view(Outcome.ANSWER, "127.0.0.1"), REF_EXISTS, V.TAMPERED),
        (view(Outcome.ANSWER, "0.0.0.0"), REF_EXISTS, V.TAMPERED),
        (view(Outcome.ANSWER, "::"), REF_EXISTS, V.TAMPERED),
        (view(Outcome.ANSWER, "142.250.74.46", "192.168.1.1"), REF_EXISTS, V.TAMPERED),
        (view(Outcome.NODATA), REF_EXISTS, V.TAMPERED),
        (view(Outcome.NODATA), REF_EXISTS_NO_ADDR, V.PRESENT),
        (view(Outcome.NODATA), REF_NONE, V.DIFFERS),
        (view(Outcome.NODATA), REF_UNKNOWN, V.UNKNOWN),
        (view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY), REF_EXISTS, V.REMOVED),
        (view(Outcome.NXDOMAIN, label=NxLabel.FORGED), REF_EXISTS_NO_ADDR, V.REMOVED),
        (view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY), REF_NONE, V.ABSENT),
        (view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY), REF_UNKNOWN, V.UNKNOWN),
        (view(Outcome.TIMEOUT), REF_EXISTS, V.UNREACHABLE),
        (view(Outcome.SERVFAIL), REF_EXISTS, V.UNREACHABLE),
        (view(Outcome.REFUSED), REF_NONE, V.UNREACHABLE),
        (view(Outcome.ERROR), REF_UNKNOWN, V.UNREACHABLE),
    ],
)
def test_judge_rules(v: NameView, ref: ReferenceView, expected: Verdict) -> None:
    """Each (answer, reference) pair gets the verdict the README's table promises."""
    assert judge(v, ref, OK).verdict is expected


def test_sinkhole_address_is_tampered() -> None:
    """A public address configured as a sinkhole means blocked."""
    sink = [ipaddress.ip_network("95.100.1.0/24")]
    assert (
        judge(view(Outcome.ANSWER, "95.100.1.10"), REF_EXISTS, OK, sinkholes=sink).verdict
        is V.TAMPERED
    )


def test_failed_controls_make_unreachable_not_removed() -> None:
    """A resolver that fails the controls this round is unreachable, whatever it said."""
    sick = Health("r", Role.NATIONAL, 1, 4)
    nx = view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY)
    assert judge(nx, REF_EXISTS, sick).verdict is V.UNREACHABLE


def test_no_connectivity_is_unknown() -> None:
    nx = view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY)
    assert judge(nx, REF_EXISTS, OK, connectivity=False).verdict is V.UNKNOWN


def test_rewritten_nxdomain_is_seen_through() -> None:
    """Addresses equal to those given for a nonexistent name are an NXDOMAIN in disguise."""
    rewriter = Health("r", Role.NATIONAL, 4, 4, True, frozenset({"93.158.134.1"}))
    j = judge(view(Outcome.ANSWER, "93.158.134.1"), REF_EXISTS, rewriter)
    assert (j.verdict, j.nx_label) == (V.REMOVED, NxLabel.REWRITTEN)
    # A real answer from the same resolver is still judged on its own.
    assert judge(view(Outcome.ANSWER, "142.250.74.46"), REF_EXISTS, rewriter).verdict is V.PRESENT


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([V.REMOVED, V.REMOVED], V.REMOVED),
        ([V.REMOVED, V.UNREACHABLE], V.REMOVED),
        ([V.REMOVED, V.PRESENT], V.PARTIAL),
        ([V.REMOVED, V.TAMPERED], V.PARTIAL),
        ([V.PRESENT, V.DIFFERS], V.PRESENT),
        ([V.DIFFERS, V.DIFFERS], V.DIFFERS),
        ([V.TAMPERED, V.TAMPERED], V.TAMPERED),
        ([V.ABSENT, V.UNREACHABLE], V.ABSENT),
        ([V.UNREACHABLE, V.UNREACHABLE], V.UNREACHABLE),
        ([V.UNKNOWN, V.UNREACHABLE], V.UNKNOWN),
        ([], V.UNKNOWN),
    ],
)
def test_headline(verdicts: list[Verdict], expected: Verdict) -> None:
    assert headline(verdicts) is expected


def test_combine_prefers_what_the_name_is() -> None:
    """A and AAAA merge: any address wins, then NODATA, then NXDOMAIN, then failures."""
    assert combine([obs(Outcome.ANSWER, "1.1.1.1"), obs(Outcome.NODATA)]).outcome is Outcome.ANSWER
    assert combine([obs(Outcome.NODATA), obs(Outcome.TIMEOUT)]).outcome is Outcome.NODATA
    nx = combine([obs(Outcome.NXDOMAIN, soa=False, aa=True), obs(Outcome.NXDOMAIN)])
    assert (nx.outcome, nx.nx_label) == (Outcome.NXDOMAIN, NxLabel.FORGED)
    assert combine([obs(Outcome.TIMEOUT), obs(Outcome.SERVFAIL)]).outcome is Outcome.SERVFAIL


def test_reference_view_trusts_only_sound_references() -> None:
    """Forged NXDOMAIN, failing or rewriting references do not make a name nonexistent."""
    h = {n: Health(n, Role.REFERENCE, 4, 4) for n in ("udp", "doh", "sick", "rw")}
    h["sick"] = Health("sick", Role.REFERENCE, 0, 4)
    h["rw"] = Health("rw", Role.REFERENCE, 4, 4, True, frozenset({"1.2.3.4"}))
    views = {
        "udp": view(Outcome.NXDOMAIN, label=NxLabel.FORGED),
        "doh": view(Outcome.ANSWER, "142.250.74.46"),
        "sick": view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY),
        "rw": view(Outcome.ANSWER, "1.2.3.4"),
    }
    ref = reference_view(views, h)
    assert ref.consensus is Consensus.EXISTS
    assert ref.addresses == {"142.250.74.46"}
    assert ref.answered == ("doh",)
    assert set(ref.ignored) == {"udp", "sick", "rw"}
    # Only the forged reply: unknown, never nonexistent.
    only_forged = reference_view({"udp": views["udp"]}, h)
    assert only_forged.consensus is Consensus.UNKNOWN
    honest_nx = reference_view({"doh": view(Outcome.NXDOMAIN, label=NxLabel.ORDINARY)}, h)
    assert honest_nx.consensus is Consensus.NONEXISTENT


def test_health_and_connectivity() -> None:
    controls = [obs(Outcome.ANSWER, "5.255.255.242"), obs(Outcome.TIMEOUT)]
    h = health("ref", Role.REFERENCE, controls, [obs(Outcome.NXDOMAIN)])
    assert (h.controls_ok, h.controls_total, h.controls_passed, h.rewrites_nxdomain) == (
        1,
        2,
        True,
        False,
    )
    rw = health("x", Role.NATIONAL, controls, [obs(Outcome.ANSWER, "93.158.134.1")])
    assert rw.rewrites_nxdomain and rw.rewrite_addresses == {"93.158.134.1"}
    down = health("ref", Role.REFERENCE, [obs(Outcome.TIMEOUT)] * 3)
    assert not connectivity_ok([down, OK])  # OK is national: it cannot vouch for us
    assert connectivity_ok([h])


def test_bogons_and_consistency() -> None:
    assert all(
        map(
            is_bogon,
            ["10.1.1.1", "172.16.0.1", "100.64.0.1", "169.254.1.1", "224.0.0.1", "::1", "fc00::1"],
        )
    )
    assert not any(map(is_bogon, ["8.8.8.8", "2a00:1450::1"]))
    assert consistent({"142.250.74.1"}, {"142.250.74.200"})
    assert not consistent({"142.250.75.1"}, {"142.250.74.200"})
    assert consistent({"2a00:1450:4010::1"}, {"2a00:1450:4010:c0e::5d"})
    assert consistent({"1.1.1.1"}, {"2a00::1"})  # nothing comparable: no evidence of difference


def _slow_bogon(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def test_bogon_shortcut_agrees_with_ipaddress() -> None:
    """is_bogon decides most IPv4 addresses from the first octet: on every /8 (its ends and
    a spread of addresses inside), and at both ends of every special block ipaddress knows,
    it says what ipaddress says."""
    known = ipaddress._IPv4Constants  # type: ignore[attr-defined]
    blocks = [*known._private_networks, known._public_network, known._multicast_network]
    edges = [
        ip + d
        for b in blocks
        for ip in (b.network_address, b.broadcast_address)
        for d in (-1, 0, 1)
        if 0 <= int(ip) + d < 2**32
    ]
    spread = [ipaddress.IPv4Address((o << 24) | (k * 0x010203 + o) % (1 << 24))
              for o in range(256) for k in range(0, 1 << 16, 997)]  # fmt: skip
    addresses = [str(ip) for ip in (*edges, *spread)]
    assert len(addresses) > 15_000
    assert [is_bogon(a) for a in addresses] == [_slow_bogon(a) for a in addresses]
    assert sum(map(is_bogon, addresses)) > 1_000  # both answers were seen many times


@given(st.ip_addresses())
def test_bogon_and_prefix_agree_with_ipaddress(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    address = str(ip)
    assert is_bogon(address) == _slow_bogon(address)
    bits = 24 if ip.version == 4 else 48
    assert _prefix(address) == (ip.version, int(ip) >> (ip.max_prefixlen - bits))


public_v4 = st.ip_addresses(v=4).filter(lambda ip: ip.is_global and not ip.is_multicast).map(str)
address_sets = st.frozensets(public_v4, min_size=1, max_size=4)
outcomes = st.sampled_from(list(Outcome))
labels = st.sampled_from([None, *NxLabel])


@given(addrs=address_sets)
def test_identical_answers_are_never_alarming(addrs: frozenset[str]) -> None:
    """A resolver that answers exactly what the reference answers is present, always."""
    j = judge(NameView(Outcome.ANSWER, addrs), ReferenceView(Consensus.EXISTS, addrs), OK)
    assert j.verdict is V.PRESENT


@given(st.lists(st.tuples(outcomes, address_sets, labels), min_size=1, max_size=5), st.randoms())
def test_reference_view_is_order_independent(
    items: list[tuple[Outcome, frozenset[str], NxLabel | None]], rnd: object
) -> None:
    """The consensus does not depend on the order the references are listed in."""
    views = {
        f"r{i}": NameView(o, a if o is Outcome.ANSWER else frozenset(), lb)
        for i, (o, a, lb) in enumerate(items)
    }
    h = {n: Health(n, Role.REFERENCE, 1, 1) for n in views}
    names = list(views)
    rnd.shuffle(names)  # type: ignore[attr-defined]
    shuffled = {n: views[n] for n in names}
    assert reference_view(views, h) == reference_view(shuffled, h)


@given(st.lists(st.sampled_from(list(Verdict)), max_size=6), st.randoms())
def test_headline_is_order_independent(verdicts: list[Verdict], rnd: object) -> None:
    shuffled = list(verdicts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert headline(verdicts) is headline(shuffled)


@given(v=st.tuples(outcomes, address_sets, labels), ref=st.sampled_from([REF_NONE, REF_UNKNOWN]))
def test_removed_needs_a_reference_that_has_the_name(
    v: tuple[Outcome, frozenset[str], NxLabel | None], ref: ReferenceView
) -> None:
    """Without a reference saying the name exists there is never a removal."""
    assert judge(NameView(*v), ref, OK).verdict is not V.REMOVED


@given(
    v=st.tuples(outcomes, address_sets, labels),
    ref=st.sampled_from([REF_EXISTS, REF_NONE, REF_UNKNOWN]),
)
def test_unusable_answers_are_never_removed(
    v: tuple[Outcome, frozenset[str], NxLabel | None], ref: ReferenceView
) -> None:
    """A timeout, SERVFAIL, REFUSED or error is an outage, never a removal."""
    outcome = v[0]
    if not outcome.usable:
        assert judge(NameView(*v), ref, OK).verdict is V.UNREACHABLE
