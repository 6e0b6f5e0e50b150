"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nsdi_tracker.core.model import Authority, Flags, Observation, Outcome


def replies(**fields: Any) -> st.SearchStrategy[Observation]:
    """nsdi-a's observations of youtube.com: any outcome, rcode, flags, addresses and authority;
    `fields`: strategies for the other fields (or in place of these)."""
    return st.builds(
        Observation,
        **{
            "resolver": st.just("nsdi-a"),
            "qname": st.just("youtube.com"),
            "qtype": st.sampled_from(["A", "AAAA"]),
            "outcome": st.sampled_from(list(Outcome)),
            "rcode": st.sampled_from([None, "NOERROR", "NXDOMAIN", "SERVFAIL"]),
            "flags": st.builds(
                Flags, aa=st.booleans(), tc=st.booleans(), ra=st.booleans(), ad=st.booleans()
            ),
            "addresses": st.lists(st.sampled_from(["1.2.3.4", "1.2.3.5", "::1"]), max_size=2).map(
                tuple
            ),
            "authority": st.builds(
                Authority,
                soa=st.booleans(),
                nsec=st.booleans(),
                soa_zone=st.sampled_from([None, "com", "example"]),
            ),
            **fields,
        },
    )
