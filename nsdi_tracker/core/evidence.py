"""What one observation shows: its evidence as JSON, and a fingerprint of what it says. Pure."""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

from nsdi_tracker.core.model import Authority, Flags, NxLabel, Observation, Outcome


def evidence(obs: Observation) -> dict[str, Any]:
    """Everything one observation shows, as JSON."""
    return {
        "outcome": str(obs.outcome),
        "rcode": obs.rcode,
        "flags": obs.flags.names(),
        "addresses": list(obs.addresses),
        "cname_chain": list(obs.cname_chain),
        "min_ttl": obs.min_ttl,
        "authority": {
            "soa": obs.authority.soa,
            "soa_zone": obs.authority.soa_zone,
            "nsec": obs.authority.nsec,
        },
        "nxdomain": str(obs.nx_label) if obs.nx_label else None,
        "ede": [{"code": c, "text": t} for c, t in obs.ede],
        "transport": obs.transport,
        "attempts": obs.attempts,
        "latency_ms": obs.latency_ms,
        "error": obs.error,
        "ignored_replies": obs.ignored,
        "reasked": obs.reasked,
    }


# Every value of evidence() at its default (an observation's outcome has none: any is a value).
DEFAULT_EVIDENCE: Final = evidence(Observation("", "", "", Outcome.ANSWER, "udp"))


def stored_evidence(obs: Observation) -> dict[str, Any]:
    """evidence(obs) as the database stores it: without what the row's columns hold (outcome,
    rcode, addresses) and without the values at their default (DEFAULT_EVIDENCE; in a nested
    object, its keys at theirs). No value is null: SQLite's json_patch, which puts the
    defaults back (the `replies` view), takes a null to mean "remove". A test holds the two
    together over random observations."""
    out: dict[str, Any] = {}
    flags = obs.flags
    if flags.aa or flags.tc or flags.ra or flags.ad:
        out["flags"] = flags.names()
    if obs.cname_chain:
        out["cname_chain"] = list(obs.cname_chain)
    if obs.min_ttl is not None:
        out["min_ttl"] = obs.min_ttl
    authority = obs.authority
    if authority.soa or authority.nsec or authority.soa_zone is not None:
        shown: dict[str, Any] = {}
        if authority.soa:
            shown["soa"] = True
        if authority.soa_zone is not None:
            shown["soa_zone"] = authority.soa_zone
        if authority.nsec:
            shown["nsec"] = True
        out["authority"] = shown
    nx_label = obs.nx_label
    if nx_label:
        out["nxdomain"] = str(nx_label)
    if obs.ede:
        out["ede"] = [{"code": c, "text": t} for c, t in obs.ede]
    if obs.transport != "udp":
        out["transport"] = obs.transport
    if obs.attempts != 1:
        out["attempts"] = obs.attempts
    if obs.latency_ms is not None:
        out["latency_ms"] = obs.latency_ms
    if obs.error is not None:
        out["error"] = obs.error
    if obs.ignored != 0:
        out["ignored_replies"] = obs.ignored
    if obs.reasked:
        out["reasked"] = True
    return out


def fingerprint(obs: Observation) -> str:
    """What an observation says, without what varies from query to query (TTL, latency, order).

    Two observations with the same fingerprint need not both be stored.
    """
    return _fingerprint(
        (obs.outcome, obs.rcode, obs.flags, obs.addresses, obs.cname_chain, obs.authority,
         obs.nx_label, obs.ede)
    )  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _fingerprint(
    key: tuple[
        Outcome, str | None, Flags, tuple[str, ...], tuple[str, ...], Authority,
        NxLabel | None, tuple[tuple[int, str], ...],
    ],
) -> str:  # fmt: skip
    """Cached: most NXDOMAIN and NODATA replies of a sweep say the same thing (one SOA)."""
    outcome, rcode, flags, addresses, chain, authority, nx_label, ede = key
    parts = (
        outcome,
        rcode or "",
        ",".join(flags.names()),
        ",".join(sorted(addresses)),
        ",".join(chain),
        f"{authority.soa}:{authority.nsec}:{authority.soa_zone}",
        str(nx_label or ""),
        ",".join(f"{c}:{t}" for c, t in ede),
    )
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
