"""The webhook sink: the event JSON POSTed, signed with HMAC-SHA256 when a secret is set.

Config: `url` (http or https), `secret` or `secret_env`, `timeout`, and the retry keys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from nsdi_tracker import __version__
from nsdi_tracker.core import redact
from nsdi_tracker.delivery.sinks.base import DeliveryError, Kind, body_of, post
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import RETRY_KEYS, SinkOptions, SinkSpec

SIGNATURE_HEADER = "X-NSDI-Tracker-Signature-256"
EVENT_HEADER = "X-NSDI-Tracker-Event"
ID_HEADER = "X-NSDI-Tracker-Event-Id"


@dataclass(frozen=True, slots=True)
class WebhookOptions(SinkOptions):
    url: str = ""
    secret: str | None = None  # the HMAC-SHA256 key

    def secrets(self) -> tuple[str, ...]:
        return (self.url,)  # the key itself never reaches a message: only its HMAC is sent


def _read(item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> WebhookOptions:
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact.url(url) if isinstance(url, str) else repr(url)
        raise fail(f"{key}.url", f"{shown}: needs an http:// or https:// URL")
    assert isinstance(url, str)
    return WebhookOptions(
        url=url,
        secret=keys.secret(item, "secret", key, fail, required=False),
        timeout=keys.number(item.get("timeout", 10.0), f"{key}.timeout", fail, 0.1, 300),
    )


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over the body, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: constant-time comparison of the signature header."""
    return hmac.compare_digest(signature(secret, body), header)


class WebhookSender:
    """POST the event JSON; any 2xx is taken, anything else is retried later."""

    def __init__(self, spec: SinkSpec, session: aiohttp.ClientSession) -> None:
        assert isinstance(spec.options, WebhookOptions)
        self.spec = spec
        self.url = spec.options.url
        self.secret = spec.options.secret
        self.shown = redact.url(self.url)  # what may be logged or stored of it
        self._session = session

    async def send(self, event: Mapping[str, Any]) -> None:
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"nsdi-tracker/{__version__}",
            EVENT_HEADER: str(event.get("type")),
            ID_HEADER: str(event.get("id")),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        status, _ = await post(self._session, self.url, body, headers, self.spec.timeout)
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status} from {self.shown}")

    async def close(self) -> None:
        pass  # the session belongs to the outbox


KIND = Kind(
    name="webhook",
    keys=frozenset({"url", "secret", "secret_env", "timeout", *RETRY_KEYS}),
    read=_read,
    sender=WebhookSender,
)
