"""A transition's evidence in words, in the page's language: what the national resolvers
answered and what the reference resolvers said, from the change-log row's columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nsdi_tracker.core.model import Consensus, NxLabel
from nsdi_tracker.web.i18n import Words


def evidence_words(row: Mapping[str, Any], w: Words) -> list[str]:
    """Short phrases, most telling first: the rcode, the NXDOMAIN's look, the addresses, the
    AUTHORITY section, the flags, then the reference resolvers' consensus."""
    parts: list[str] = []
    if row.get("rcode"):
        parts.append(w("ev.rcode", rcode=row["rcode"]))
    label = row.get("nxdomain")
    if label and label in set(NxLabel):
        parts.append(w("ev.nx", label=w(f"nx.{label}")))
    addresses = row.get("addresses") or []
    if addresses:
        parts.append(w("ev.addresses", addresses=", ".join(addresses)))
    elif row.get("rcode") == "NOERROR":
        parts.append(w("ev.no_addresses"))
    if row.get("authority"):
        parts.append(w("ev.authority", authority=row["authority"]))
    if row.get("flags"):
        parts.append(w("ev.flags", flags=" ".join(f.upper() for f in row["flags"])))
    consensus = row.get("reference_consensus")
    if consensus and consensus in set(Consensus):
        said = w(f"consensus.{consensus}")
        at = row.get("reference_addresses") or []
        if at:
            parts.append(w("ev.reference_at", consensus=said, addresses=", ".join(at)))
        else:
            parts.append(w("ev.reference", consensus=said))
    return parts
