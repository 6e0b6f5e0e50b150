"""The vocabulary: roles, transports, round statuses, event types, outcomes, verdicts and the
observation of one query."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, NamedTuple

NATIONAL: Final = "national"  # the scope of the headline verdict; other scopes are resolver names
EVENT_VERSION: Final = 1  # a change event's "version": the layout of its JSON

# A NamedTuple from a tuple of its fields in their order: new_record(Summary, fields). It skips
# the Python-level __new__ a NamedTuple has, which costs more than the tuple itself; a round
# makes several records per name (a query, its observation, the reply's summary, the entry).
new_record: Final[Any] = tuple.__new__


class Role(StrEnum):
    """What a resolver is for in the comparison."""

    NATIONAL = "national"  # the system under observation; feeds the headline verdict
    REFERENCE = "reference"  # outside the national system; ground truth
    OBSERVED = "observed"  # another resolver judged against the reference, not in the headline


class Transport(StrEnum):
    """How a resolver is asked; each is implemented in dns.transports, where it is registered."""

    UDP = "udp"
    TCP = "tcp"
    DOT = "dot"
    DOH = "doh"

    @property
    def default_port(self) -> int:
        return _TRANSPORT_FACTS[self][0]

    @property
    def by_url(self) -> bool:
        """The resolver's address is an https:// URL (else host[:port])."""
        return _TRANSPORT_FACTS[self][1]

    @property
    def tls(self) -> bool:
        """It takes a certificate name and a CA bundle (`tls_name`, `ca_file`)."""
        return _TRANSPORT_FACTS[self][2]


# (default port, address is a URL, over TLS): what the config needs to know of a transport
_TRANSPORT_FACTS: Final = {
    Transport.UDP: (53, False, False),
    Transport.TCP: (53, False, False),
    Transport.DOT: (853, False, True),
    Transport.DOH: (443, True, True),
}


class RoundStatus(StrEnum):
    """How a round ended: stored in `rounds.status`, logged, counted, drawn."""

    OK = "ok"  # every resolver passed its controls
    PARTIAL = "partial"  # some resolver failed its controls this round
    OFFLINE = "offline"  # no reference passed: our own connectivity is in doubt
    TIMEOUT = "timeout"  # overran round_timeout and was cut off: nothing it measured is kept


MEASURED: Final = (RoundStatus.OK, RoundStatus.PARTIAL)  # rounds whose verdicts count


class EventType(StrEnum):
    """What a confirmed transition is called in events, the change log and the feeds."""

    BASELINE = "baseline"  # the first confirmed verdict of a (domain, scope): not a change
    REMOVED = "removed"
    RESTORED = "restored"
    TAMPERED = "tampered"
    UNREACHABLE = "unreachable"
    RECOVERED = "recovered"
    CHANGED = "changed"
    FILTERED = "filtered"  # a fleet's: blocked in some networks, resolving in others
    RESOLVER_DOWN = "resolver_down"  # a resolver (or every national one) failed its controls
    RESOLVER_UP = "resolver_up"  # ... and passes them again


class Outcome(StrEnum):
    """What one query finally got, after retries."""

    ANSWER = "answer"  # NOERROR with addresses of the asked type
    NODATA = "nodata"  # NOERROR, the name exists but has no address of that type
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"  # transport failure, other rcode, HTTP error, malformed only

    @property
    def usable(self) -> bool:
        """True when the resolver said something about the name itself."""
        return self in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN)


class NxLabel(StrEnum):
    """How an NXDOMAIN reply looks, so an ordinary, a bare and a forged one can be told apart."""

    ORDINARY = "ordinary"  # the parent zone's SOA in AUTHORITY, as honest resolvers send
    BARE = "bare"  # no SOA in AUTHORITY
    FORGED = "forged"  # no SOA and the AA flag set: the signature of the TSPU's injected replies
    REWRITTEN = "rewritten"  # addresses equal to what the resolver gives for a nonexistent name


# The looks of an NXDOMAIN that are news in themselves: shown wherever its verdict is.
NOTABLE_NX: Final = frozenset({NxLabel.FORGED, NxLabel.REWRITTEN})


class Verdict(StrEnum):
    """The judgement for one (domain, resolver) or the national headline."""

    PRESENT = "present"
    REMOVED = "removed"
    TAMPERED = "tampered"
    DIFFERS = "differs"
    UNREACHABLE = "unreachable"
    ABSENT = "absent"
    UNKNOWN = "unknown"
    PARTIAL = "partial"  # headline only: the national resolvers disagree


class ResolverState(StrEnum):
    """A resolver's own health, confirmed like a verdict: `down` when it fails its controls
    (or answers nothing usable). It is tracked once per resolver, not per name: while a
    resolver is down, the verdicts of the names on it are held as they were."""

    UP = "up"
    DOWN = "down"


class Consensus(StrEnum):
    """What the reference resolvers together say about a name."""

    EXISTS = "exists"
    NONEXISTENT = "nonexistent"
    UNKNOWN = "unknown"


# The records below are made once per reply, a million times a round: NamedTuples, as
# immutable as frozen dataclasses and four to eight times cheaper to build (a frozen
# dataclass's __init__ pays an object.__setattr__ per field).


class Flags(NamedTuple):
    aa: bool = False
    tc: bool = False
    ra: bool = False
    ad: bool = False

    def names(self) -> list[str]:
        return [n for n in ("aa", "tc", "ra", "ad") if getattr(self, n)]


class Authority(NamedTuple):
    """A summary of a reply's AUTHORITY section."""

    soa: bool = False
    nsec: bool = False  # NSEC or NSEC3 records: a DNSSEC denial proof was offered
    soa_zone: str | None = None


class Summary(NamedTuple):
    """What an observation keeps of one reply; both readers (fastwire, dnspython) make it."""

    rcode: str
    flags: Flags
    addresses: tuple[str, ...]
    cname_chain: tuple[str, ...]
    min_ttl: int | None
    authority: Authority
    ede: tuple[tuple[int, str], ...]


_NO_FLAGS = Flags()
_NO_AUTHORITY = Authority()


class Observation(NamedTuple):
    """The final result of asking one resolver one question, with the evidence kept."""

    resolver: str
    qname: str
    qtype: str  # "A" or "AAAA"
    outcome: Outcome
    transport: str  # what carried the final reply: udp, tcp, udp+tcp (after truncation), dot, doh
    attempts: int = 1
    latency_ms: float | None = None
    rcode: str | None = None
    flags: Flags = _NO_FLAGS
    addresses: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    min_ttl: int | None = None
    authority: Authority = _NO_AUTHORITY
    ede: tuple[tuple[int, str], ...] = ()  # Extended DNS Errors: (code, text)
    error: str | None = None
    ignored: int = 0  # replies dropped: wrong id, question or source, malformed
    reasked: bool = False  # a national NXDOMAIN was asked again before it counted

    @property
    def nx_label(self) -> NxLabel | None:
        if self.outcome is not Outcome.NXDOMAIN:
            return None
        if self.authority.soa:
            return NxLabel.ORDINARY
        return NxLabel.FORGED if self.flags.aa else NxLabel.BARE
