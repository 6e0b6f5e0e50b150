"""Fleet submissions' signatures: the token, the timestamp and the body are all bound."""

from __future__ import annotations

from nsdi_tracker.core.signing import MAX_SKEW, check, headers, sign

TOKEN, BODY, NOW, NONCE = "s3cret-token", b'{"schema": 1}', 1_790_000_000, "ab" * 16


def test_a_signed_submission_is_taken() -> None:
    h = headers("msk-1", TOKEN, NOW, BODY)
    assert h["X-NSDI-Fleet-Probe"] == "msk-1"
    stamp, nonce = h["X-NSDI-Fleet-Timestamp"], h["X-NSDI-Fleet-Nonce"]
    assert check(TOKEN, BODY, stamp, nonce, h["X-NSDI-Fleet-Signature-256"], NOW) is None
    assert len(sign(TOKEN, NOW, NONCE, BODY)) == 71
    again = headers("msk-1", TOKEN, NOW, BODY)  # the same body in the same second
    assert again["X-NSDI-Fleet-Signature-256"] != h["X-NSDI-Fleet-Signature-256"]


def test_anything_changed_is_refused() -> None:
    good = sign(TOKEN, NOW, NONCE, BODY)
    cases = {
        "another token": check("other", BODY, str(NOW), NONCE, good, NOW),
        "another body": check(TOKEN, BODY + b" ", str(NOW), NONCE, good, NOW),
        "another time": check(TOKEN, BODY, str(NOW + 1), NONCE, good, NOW),
        "another nonce": check(TOKEN, BODY, str(NOW), "cd" * 16, good, NOW),
        "a bad nonce": check(TOKEN, BODY, str(NOW), "x", good, NOW),
        "no signature": check(TOKEN, BODY, str(NOW), NONCE, None, NOW),
        "no time": check(TOKEN, BODY, None, NONCE, good, NOW),
        "not digits": check(TOKEN, BODY, "１７９", NONCE, good, NOW),
    }
    assert all(r is not None for r in cases.values()), cases
    assert "does not match" in cases["another body"].reason  # type: ignore[union-attr]


def test_old_and_future_timestamps_are_refused() -> None:
    old = NOW - int(MAX_SKEW) - 1
    refusal = check(TOKEN, BODY, str(old), NONCE, sign(TOKEN, old, NONCE, BODY), NOW)
    assert refusal is not None and "from the collector's clock" in refusal.reason
    ahead = NOW + int(MAX_SKEW) + 1
    assert check(TOKEN, BODY, str(ahead), NONCE, sign(TOKEN, ahead, NONCE, BODY), NOW)
    edge = NOW - int(MAX_SKEW)
    assert check(TOKEN, BODY, str(edge), NONCE, sign(TOKEN, edge, NONCE, BODY), NOW) is None
