"""Fleet submissions' signatures: the token, the timestamp and the body are all bound."""

from __future__ import annotations

from nsdi_tracker.core.signing import MAX_SKEW, check, headers, sign

TOKEN, BODY, NOW = "s3cret-token", b'{"schema": 1}', 1_790_000_000


def test_a_signed_submission_is_taken() -> None:
    h = headers("msk-1", TOKEN, NOW, BODY)
    assert h["X-NSDI-Fleet-Probe"] == "msk-1"
    assert (
        check(TOKEN, BODY, h["X-NSDI-Fleet-Timestamp"], h["X-NSDI-Fleet-Signature-256"], NOW)
        is None
    )
    assert sign(TOKEN, NOW, BODY).startswith("sha256=") and len(sign(TOKEN, NOW, BODY)) == 71


def test_anything_changed_is_refused() -> None:
    good = sign(TOKEN, NOW, BODY)
    cases = {
        "another token": check("other", BODY, str(NOW), good, NOW),
        "another body": check(TOKEN, BODY + b" ", str(NOW), good, NOW),
        "another time": check(TOKEN, BODY, str(NOW + 1), good, NOW),
        "no signature": check(TOKEN, BODY, str(NOW), None, NOW),
        "no time": check(TOKEN, BODY, None, good, NOW),
        "not digits": check(TOKEN, BODY, "１７９", good, NOW),
    }
    assert all(r is not None for r in cases.values()), cases
    assert "does not match" in cases["another body"].reason  # type: ignore[union-attr]


def test_old_and_future_timestamps_are_refused() -> None:
    old = NOW - int(MAX_SKEW) - 1
    refusal = check(TOKEN, BODY, str(old), sign(TOKEN, old, BODY), NOW)
    assert refusal is not None and "from the collector's clock" in refusal.reason
    ahead = NOW + int(MAX_SKEW) + 1
    assert check(TOKEN, BODY, str(ahead), sign(TOKEN, ahead, BODY), NOW) is not None
    edge = NOW - int(MAX_SKEW)
    assert check(TOKEN, BODY, str(edge), sign(TOKEN, edge, BODY), NOW) is None
