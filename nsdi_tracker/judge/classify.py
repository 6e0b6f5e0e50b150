"""Verdicts: where "NXDOMAIN versus the reference" is decided. Pure functions, no I/O.

Every rule errs towards *not* reporting a removal: a CDN difference is `differs`, a dead or
failing resolver is `unreachable`, and our own lost connectivity is `unknown`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from nsdi_tracker.core.model import Consensus, NxLabel, Observation, Outcome, Role, Verdict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Two answers are consistent when they share an address or a routing-sized prefix: CDNs hand
# neighbouring addresses of one block to different resolvers.
_PREFIX: Final = {4: 24, 6: 48}
# Addresses whose bogon, prefix and sinkhole answers are remembered: CDN addresses repeat
# name after name; a bounded few thousand keep memory flat over a million-name sweep.
ADDRESS_CACHE = 4096


class NameView(NamedTuple):
    """One resolver's answer about one name, A and AAAA combined. This and the other records
    made per name (ReferenceView, Judgement) are NamedTuples: a million-name round makes
    millions of them, and a frozen dataclass costs several times more to build."""

    outcome: Outcome
    addresses: frozenset[str] = frozenset()
    nx_label: NxLabel | None = None


class ReferenceView(NamedTuple):
    """What the trusted reference resolvers together say about one name."""

    consensus: Consensus
    addresses: frozenset[str] = frozenset()
    answered: tuple[str, ...] = ()  # the references whose answers counted
    ignored: tuple[str, ...] = ()  # references left out (failed controls, rewriting, forged reply)


@dataclass(frozen=True, slots=True)
class Health:
    """How a resolver did on this round's controls."""

    name: str
    role: Role
    controls_ok: int
    controls_total: int
    rewrites_nxdomain: bool = False  # answered the negative control with addresses
    rewrite_addresses: frozenset[str] = frozenset()
    answering: bool = True  # some control or the negative control got a usable reply

    @property
    def controls_passed(self) -> bool:
        # A majority, so that one control being censored itself does not blind the round.
        return self.controls_total == 0 or self.controls_ok * 2 >= self.controls_total

    @property
    def up(self) -> bool:
        """Its answers about names count this round: it passed the positive controls and
        said something usable (which matters when no controls are configured)."""
        return self.controls_passed and self.answering

    @property
    def problem(self) -> str:
        """Why it is down this round ("" when it is up)."""
        if not self.controls_passed:
            return f"failed the positive controls ({self.controls_ok}/{self.controls_total})"
        if not self.answering:
            return "no usable reply to the controls or the negative control"
        return ""


class Judgement(NamedTuple):
    verdict: Verdict
    reason: str
    nx_label: NxLabel | None = None


def combine(observations: Iterable[Observation]) -> NameView:
    """Merge a resolver's A and AAAA observations of one name into what it says of the name."""
    obs = list(observations)
    addresses = frozenset(a for o in obs for a in o.addresses)
    outcomes = [o.outcome for o in obs]
    for outcome in (Outcome.ANSWER, Outcome.NODATA):
        if outcome in outcomes:
            return NameView(outcome, addresses)
    nx = [o.nx_label for o in obs if o.outcome is Outcome.NXDOMAIN]
    if nx:
        for label in (NxLabel.FORGED, NxLabel.BARE, NxLabel.ORDINARY):
            if label in nx:
                return NameView(Outcome.NXDOMAIN, addresses, label)
    for outcome in (Outcome.SERVFAIL, Outcome.REFUSED, Outcome.TIMEOUT, Outcome.ERROR):
        if outcome in outcomes:
            return NameView(outcome, addresses)
    return NameView(Outcome.ERROR)


def health(
    name: str,
    role: Role,
    controls: Sequence[Observation],
    negative: Sequence[Observation] = (),
) -> Health:
    """Controls: how many positive controls got addresses; did a nonexistent name get any?"""
    rewrite = frozenset(a for o in negative if o.outcome is Outcome.ANSWER for a in o.addresses)
    asked = (*controls, *negative)
    return Health(
        name=name,
        role=role,
        controls_ok=sum(1 for o in controls if o.outcome is Outcome.ANSWER),
        controls_total=len(controls),
        rewrites_nxdomain=bool(rewrite),
        rewrite_addresses=rewrite,
        answering=not asked or any(o.outcome.usable for o in asked),
    )


def reference_view(views: dict[str, NameView], healths: dict[str, Health]) -> ReferenceView:
    """The references' consensus on a name.

    A reference counts only if it passed the controls, does not rewrite NXDOMAIN, and its
    answer is not a forged-looking NXDOMAIN (AA set, no SOA: what the DPI boxes inject).
    """
    answered: list[str] = []
    ignored: list[str] = []
    addresses: set[str] = set()
    saw_exists = saw_nx = False
    for name in sorted(views):
        view, h = views[name], healths[name]
        trusted = h.up and not h.rewrites_nxdomain
        if not trusted or view.nx_label is NxLabel.FORGED:
            ignored.append(name)
            continue
        if view.outcome in (Outcome.ANSWER, Outcome.NODATA):
            saw_exists = True
            addresses.update(view.addresses)
            answered.append(name)
        elif view.outcome is Outcome.NXDOMAIN:
            saw_nx = True
            answered.append(name)
    if saw_exists:
        consensus = Consensus.EXISTS
    elif saw_nx:
        consensus = Consensus.NONEXISTENT
    else:
        consensus = Consensus.UNKNOWN
    return ReferenceView(consensus, frozenset(addresses), tuple(answered), tuple(ignored))


def connectivity_ok(healths: Iterable[Health]) -> bool:
    """False when every reference failed the controls: our own connection is down."""
    return any(h.up for h in healths if h.role is Role.REFERENCE)


def judge(
    view: NameView,
    ref: ReferenceView,
    h: Health,
    *,
    connectivity: bool = True,
    sinkholes: Sequence[IPNetwork] = (),
) -> Judgement:
    """The verdict for one (name, national or observed resolver)."""
    if not connectivity:
        return Judgement(Verdict.UNKNOWN, "every reference failed the controls: no connectivity")
    if not h.up:  # not even asked about the name: see measure.sweep
        return Judgement(Verdict.UNREACHABLE, f"resolver down this round: {h.problem}")
    outcome, label = view.outcome, view.nx_label
    if outcome is Outcome.ANSWER and h.rewrites_nxdomain and view.addresses <= h.rewrite_addresses:
        outcome, label = Outcome.NXDOMAIN, NxLabel.REWRITTEN
    if not outcome.usable:
        return Judgement(Verdict.UNREACHABLE, f"no usable answer after retries ({outcome})")

    if outcome is Outcome.ANSWER:
        nets = tuple(sinkholes)
        bad = sorted(a for a in view.addresses if is_bogon(a) or (nets and _in(a, nets)))
        if bad:
            return Judgement(Verdict.TAMPERED, f"bogon or sinkhole address: {', '.join(bad)}")
        if ref.consensus is Consensus.NONEXISTENT:
            return Judgement(Verdict.TAMPERED, "addresses for a name the references say is absent")
        if ref.consensus is Consensus.EXISTS and not consistent(view.addresses, ref.addresses):
            return Judgement(Verdict.DIFFERS, "public addresses disjoint from the reference's")
        if ref.consensus is Consensus.EXISTS and ref.addresses:
            return Judgement(Verdict.PRESENT, "addresses consistent with the reference")
        return Judgement(Verdict.PRESENT, "public routable addresses")

    if outcome is Outcome.NODATA:
        if ref.consensus is Consensus.EXISTS and ref.addresses:
            return Judgement(Verdict.TAMPERED, "no addresses (NODATA) while the reference has some")
        if ref.consensus is Consensus.EXISTS:
            return Judgement(Verdict.PRESENT, "the name exists; no addresses anywhere")
        if ref.consensus is Consensus.NONEXISTENT:
            return Judgement(Verdict.DIFFERS, "NODATA for a name the references say is absent")
        return Judgement(Verdict.UNKNOWN, "no reference answer for this name")

    # NXDOMAIN
    if ref.consensus is Consensus.EXISTS:
        return Judgement(Verdict.REMOVED, f"NXDOMAIN ({label}) while the reference has it", label)
    if ref.consensus is Consensus.NONEXISTENT:
        return Judgement(Verdict.ABSENT, "NXDOMAIN everywhere: the name does not exist", label)
    return Judgement(Verdict.UNKNOWN, "no reference answer for this name", label)


def headline(verdicts: Sequence[Verdict]) -> Verdict:
    """The national verdict from the national resolvers' verdicts.

    Resolvers that are unreachable or unknown this round do not outvote those that answered.
    """
    informative = {v for v in verdicts if v not in (Verdict.UNREACHABLE, Verdict.UNKNOWN)}
    if not informative:
        return (
            Verdict.UNKNOWN if Verdict.UNKNOWN in verdicts or not verdicts else Verdict.UNREACHABLE
        )
    if informative == {Verdict.REMOVED}:
        return Verdict.REMOVED
    if informative <= {Verdict.PRESENT, Verdict.DIFFERS}:
        return Verdict.PRESENT if Verdict.PRESENT in informative else Verdict.DIFFERS
    if len(informative) == 1:
        return next(iter(informative))
    return Verdict.PARTIAL


def _special_octets() -> frozenset[int]:
    """The first octets of the IPv4 /8s that hold a block ipaddress treats as not global
    (IANA's special-purpose registry, as this Python knows it), read from its own tables;
    every octet if those tables are not where they were (a future Python): no shortcut."""
    try:
        known = ipaddress._IPv4Constants  # type: ignore[attr-defined]
        blocks = [
            *known._private_networks,
            *getattr(known, "_private_networks_exceptions", ()),
            known._public_network,  # 100.64.0.0/10, shared address space, despite the name
            known._multicast_network,
            known._reserved_network,
            known._linklocal_network,
            known._loopback_network,
        ]
        octets: set[int] = set()
        for block in blocks:
            octets.update(
                range(int(block.network_address) >> 24, (int(block.broadcast_address) >> 24) + 1)
            )
        return frozenset(octets)
    except (AttributeError, TypeError, ValueError):
        return frozenset(range(256))


# An IPv4 address outside these /8s is global and not multicast, decided from its first
# octet without building an address object: a top-million sweep meets hundreds of thousands
# of distinct addresses, far more than any cache holds. tests/test_classify.py checks the
# shortcut against ipaddress.
_SPECIAL_OCTETS: Final = _special_octets()


def is_bogon(address: str) -> bool:
    """Not globally routable: private, loopback, link-local, unspecified, reserved, multicast.
    `address` is the text a reply parser wrote (dotted quad, or IPv6)."""
    dot = address.find(".")
    if 0 < dot < 4 and ":" not in address and int(address[:dot]) not in _SPECIAL_OCTETS:
        return False
    return _is_bogon(address)


@functools.lru_cache(maxsize=ADDRESS_CACHE)
def _is_bogon(address: str) -> bool:
    """Cached: the same CDN addresses come back name after name."""
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def _prefix(address: str) -> tuple[int, int]:
    """(IP version, the routing-sized prefix as an integer): equal prefixes are neighbours."""
    if ":" not in address:
        a, b, c, _ = address.split(".")  # a dotted quad, as the reply parsers write it
        return 4, (int(a) << 16) | (int(b) << 8) | int(c)
    return _prefix6(address)


@functools.lru_cache(maxsize=ADDRESS_CACHE)
def _prefix6(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip) >> (ip.max_prefixlen - _PREFIX[ip.version])


def consistent(ours: Iterable[str], theirs: Iterable[str]) -> bool:
    """Do two address sets overlap (by address or prefix) in some family both have?"""
    ours, theirs = frozenset(ours), frozenset(theirs)
    if ours & theirs:
        return True  # a shared address: the same family and the same prefix
    mine = {_prefix(a) for a in ours}
    other = {_prefix(a) for a in theirs}
    comparable = [
        v for v in (4, 6) if any(k[0] == v for k in mine) and any(k[0] == v for k in other)
    ]
    return not comparable or bool(mine & other)


@functools.lru_cache(maxsize=ADDRESS_CACHE)
def _in(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in networks)
