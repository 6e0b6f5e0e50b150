"""How a probe signs what it submits to a fleet's collector, and how the collector checks it.

The signature is HMAC-SHA256 over the timestamp, a nonce and the body (`<unix seconds>.<nonce>.
<body>`), keyed with the probe's token, sent as `sha256=<hex>`. The timestamp is signed, so
an old submission cannot be given a new one; the nonce makes each request's signature its
own (the same body sent twice in one second is two requests, not a replay). The collector
refuses timestamps more than MAX_SKEW seconds from its clock, and remembers the signatures
it took within that window, so the same request sent again (a replay) is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

PROBE_HEADER: Final = "X-NSDI-Fleet-Probe"
TIME_HEADER: Final = "X-NSDI-Fleet-Timestamp"
NONCE_HEADER: Final = "X-NSDI-Fleet-Nonce"
SIGNATURE_HEADER: Final = "X-NSDI-Fleet-Signature-256"
_NONCE: Final = re.compile(r"[0-9a-f]{16,64}")
MIN_TOKEN: Final = 16  # characters: a token is a shared secret, not a password to remember
MAX_SKEW: Final = 300.0  # seconds a submission's timestamp may differ from the collector's


def sign(token: str, timestamp: int, nonce: str, body: bytes) -> str:
    mac = hmac.new(token.encode(), f"{timestamp}.{nonce}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(probe: str, token: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers a submission carries, with a fresh nonce."""
    nonce = secrets.token_hex(16)
    return {
        PROBE_HEADER: probe,
        TIME_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(token, timestamp, nonce, body),
    }


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a signed submission is not taken (the collector answers 401 with it)."""

    reason: str


def check(
    token: str,
    body: bytes,
    timestamp: str | None,
    nonce: str | None,
    signature: str | None,
    now: float,
) -> Refusal | None:
    """None when `signature` is the token's over `timestamp`, `nonce` and `body`, and the
    timestamp is within MAX_SKEW of `now`; else why not (saying only which check failed)."""
    if not timestamp or not nonce or not signature:
        return Refusal(f"{TIME_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER} are required")
    if not _NONCE.fullmatch(nonce):
        return Refusal(f"{NONCE_HEADER} must be 16 to 64 hex digits")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return Refusal(f"{TIME_HEADER} must be whole seconds since 1970")
    if abs(now - int(timestamp)) > MAX_SKEW:
        return Refusal(f"{TIME_HEADER} is more than {MAX_SKEW:g} s from the collector's clock")
    if not hmac.compare_digest(sign(token, int(timestamp), nonce, body), signature):
        return Refusal("the signature does not match")
    return None
