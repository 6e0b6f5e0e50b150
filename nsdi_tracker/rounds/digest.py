"""Each watched name's digest: what its last committed round saw of it, in eight bytes.

A name is judged from its replies and the round's context (the resolvers, their roles and
health this round, the sinkholes), and nothing else. So when a name's replies say what they
said when its digest was taken, in the same context, the full path would judge it the same;
and if its tracks were settled then (nothing pending, nothing re-asked), it would change no
track, store no reply (the fingerprints are the stored ones) and touch no watchlist row. Such
a name skips the look-ups, the planning and the staging: the round only counts it.

The digest covers what the full path compares: what each reply's fingerprint covers
(core.evidence), the entry's label and category, and the context. It is stable across
processes (BLAKE2b, not Python's salted hash), so `run --once` reads the stored ones in one
pass, and kept by the daemon between rounds. Pure.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from nsdi_tracker.core.model import Observation
from nsdi_tracker.judge.classify import Health
from nsdi_tracker.settings.config import IPNetwork
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.settings.watchlist import Entry, Watchlist

# Part of every digest: a change to what a digest covers changes this, so that the digests an
# older version stored match nothing.
VERSION: Final = b"nsdi-tracker name digest 1"
_SEP: Final = "\x1f"
_NONE: Final = "\x00"  # a label or category that is not there, unlike an empty one


def round_context(
    resolvers: Sequence[ResolverSpec],
    healths: Mapping[str, Health],
    connectivity: bool,
    sinkholes: Sequence[IPNetwork],
) -> bytes:
    """What a round judges every name against, as bytes: each resolver (in the config's
    order, which is the order of a name's replies) with its role and what its controls said,
    whether we are connected, and the sinkhole networks."""
    parts = [VERSION.decode(), str(connectivity), ",".join(str(n) for n in sinkholes)]
    for r in resolvers:
        h = healths[r.name]
        rewrite = ",".join(sorted(h.rewrite_addresses))
        parts.append(f"{r.name}|{r.role}|{h.up}|{h.rewrites_nxdomain}|{rewrite}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).digest()


def name_digest(context: bytes, entry: Entry, observations: Iterable[Observation]) -> int:
    """A name's digest: a positive 63-bit integer (SQLite's INTEGER holds it)."""
    label = _NONE if entry.label is None else entry.label
    category = _NONE if entry.category is None else entry.category
    text = _SEP.join([label, category, *map(reply_text, observations)])
    digest = hashlib.blake2b(context + text.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 1) or 1


def reply_text(obs: Observation) -> str:
    """Everything of an observation that its fingerprint covers (core.evidence), as text:
    the same text, the same fingerprint (the NXDOMAIN look follows from the outcome, the
    authority and the AA flag). Not hashed on its own: the name's digest hashes them all.
    Built from plain strings: formatting an enum or a bool goes through Python-level code."""
    f, a = obs.flags, obs.authority
    flags = ("1" if f.aa else "0") + ("1" if f.tc else "0") + ("1" if f.ra else "0")
    flags += "1" if f.ad else "0"
    zone = _NONE if a.soa_zone is None else a.soa_zone
    return _SEP.join(
        (
            obs.outcome._value_,
            _NONE if obs.rcode is None else obs.rcode,
            flags,
            ",".join(obs.addresses),
            ",".join(obs.cname_chain),
            ("1" if a.soa else "0") + ("1" if a.nsec else "0") + zone,
            repr(obs.ede) if obs.ede else "",
        )
    )


class DigestBook:
    """The digests of one watchlist's names, by their place in it: from the last committed
    round (`known`) and from this one (`fresh`, which becomes `known` when the round is
    committed). Eight bytes a name. `gone`: the names the store watches that this watchlist
    no longer holds, to be flagged by the next commit.

    `check` runs on the event loop as names complete; `keep` on the database thread as each
    batch is staged; they touch different arrays.
    """

    __slots__ = ("context", "entries", "fresh", "gone", "known", "skipping", "unchanged")

    def __init__(
        self, entries: Sequence[Entry], known: array[int] | None = None, gone: Sequence[str] = ()
    ) -> None:
        self.entries = entries
        self.known = known if known is not None else _zeros(len(entries))
        self.fresh = array("q", self.known)
        self.gone = tuple(gone)
        self.context = b""
        self.skipping = True  # False: every name takes the full path (raw archive, tests)
        self.unchanged = 0  # names this round skipped

    @classmethod
    def load(cls, entries: Sequence[Entry], stored: Iterable[tuple[str, int | None]]) -> DigestBook:
        """From the store's watched names with their digests (None: none kept), in one pass."""
        names = entries.domains if isinstance(entries, Watchlist) else [e.domain for e in entries]
        where: dict[str, int] = {}
        for i, name in enumerate(names):
            where.setdefault(name, i)
        known = _zeros(len(entries))
        gone: list[str] = []
        for name, digest in stored:
            place = where.get(name)
            if place is None:
                gone.append(name)
            elif digest:
                known[place] = digest
        return cls(entries, known, gone)

    def fits(self, entries: Sequence[Entry]) -> bool:
        """Kept for this very watchlist (a reload makes a new one, and a new book)."""
        return self.entries is entries

    def begin(self, context: bytes) -> None:
        """A round starts, with its context: nothing of a round that was never committed
        (cut off, or failed) is kept."""
        self.context = context
        self.fresh = array("q", self.known)
        self.unchanged = 0

    def check(self, index: int, entry: Entry, observations: Sequence[Observation]) -> int:
        """The name's digest now, or 0 when it is the known one (the name is unchanged and
        skipped)."""
        digest = name_digest(self.context, entry, observations)
        if self.skipping and digest == self.known[index]:
            self.unchanged += 1
            return 0
        return digest

    def keep(self, index: int, digest: int) -> None:
        """What the planner kept for a name it planned this round (0: nothing, it moves)."""
        self.fresh[index] = digest

    def committed(self) -> None:
        self.known = self.fresh
        self.fresh = array("q", self.known)
        self.gone = ()


def _zeros(n: int) -> array[int]:
    return array("q", bytes(8 * n))
