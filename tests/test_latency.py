"""A reply's latency: milliseconds to the microsecond, and its histogram bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nsdi_tracker.dns.latency import LATENCY_EDGES_MS, latency_bucket, to_ms


@given(st.floats(0, 3600, allow_nan=False))
def test_a_latency_is_milliseconds_to_the_microsecond(seconds: float) -> None:
    """What round(seconds * 1000, 3) gave, ties aside (a microsecond's half either way), and
    never more than three decimals in the JSON it goes into."""
    ms = to_ms(seconds)
    tie = abs(seconds * 1_000_000 % 1 - 0.5) < 1e-6
    assert ms == round(seconds * 1000, 3) or tie
    assert abs(ms - seconds * 1000) <= 0.0005 + 1e-9
    assert len(repr(ms).partition(".")[2]) <= 3


def test_a_latency_falls_in_the_bucket_of_its_edge() -> None:
    """An edge belongs to the bucket it closes; past the last edge, the last bucket."""
    assert latency_bucket(to_ms(0.0)) == 0
    assert latency_bucket(to_ms(0.001)) == 0  # 1 ms: the first edge
    assert latency_bucket(to_ms(0.0010005)) == 1
    assert latency_bucket(to_ms(60.0)) == len(LATENCY_EDGES_MS)
