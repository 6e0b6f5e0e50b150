"""What one observation shows: its evidence as JSON, and a fingerprint of what it says. Pure."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

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
