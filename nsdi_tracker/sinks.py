"""Where events go: a JSON-lines log, a signed webhook, or Apprise notifications.

A sender raises DeliveryError when the receiver did not take the event; the outbox then retries
it later. Senders never decide about retries themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sys
import warnings
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

import aiohttp

from nsdi_tracker import __version__
from nsdi_tracker.config import SinkSpec
from nsdi_tracker.errors import ConfigError
from nsdi_tracker.events import headline_text

SIGNATURE_HEADER = "X-NSDI-Tracker-Signature-256"
EVENT_HEADER = "X-NSDI-Tracker-Event"
ID_HEADER = "X-NSDI-Tracker-Event-Id"


class DeliveryError(Exception):
    """The receiver did not accept the event (yet)."""


class Sender(Protocol):
    spec: SinkSpec

    async def send(self, event: Mapping[str, Any]) -> None: ...

    async def close(self) -> None: ...


def body_of(event: Mapping[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over the body, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: constant-time comparison of the signature header."""
    return hmac.compare_digest(signature(secret, body), header)


class LogSender:
    """One JSON object per line, to stdout or appended to a file (flushed per event)."""

    def __init__(self, spec: SinkSpec, stream: TextIO | None = None) -> None:
        self.spec = spec
        self._stream = stream
        self._file: TextIO | None = None

    async def send(self, event: Mapping[str, Any]) -> None:
        try:
            out = self._out()
            out.write(body_of(event).decode() + "\n")
            out.flush()
        except OSError as exc:
            raise DeliveryError(f"cannot write the log: {exc}") from None

    def _out(self) -> TextIO:
        if self._stream is not None:
            return self._stream
        if self.spec.path is None:
            return sys.stdout
        if self._file is None:
            self.spec.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.spec.path.open("a", encoding="utf-8")
        return self._file

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class WebhookSender:
    """POST the event JSON; any 2xx is taken, anything else is retried later."""

    def __init__(self, spec: SinkSpec, session: aiohttp.ClientSession) -> None:
        assert spec.url is not None
        self.spec = spec
        self.url = spec.url
        self._session = session

    async def send(self, event: Mapping[str, Any]) -> None:
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"nsdi-tracker/{__version__}",
            EVENT_HEADER: str(event.get("type")),
            ID_HEADER: str(event.get("id")),
        }
        if self.spec.secret:
            headers[SIGNATURE_HEADER] = signature(self.spec.secret, body)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout)
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"HTTP {response.status} from {self.url}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc or 'timed out'}") from None

    async def close(self) -> None:
        pass  # the session belongs to the outbox


class AppriseSender:
    """Telegram, Slack, Matrix, e-mail... through Apprise (`pip install nsdi-tracker[notify]`)."""

    def __init__(self, spec: SinkSpec) -> None:
        try:
            with warnings.catch_warnings():
                # Apprise imports the deprecated imghdr when it first sends; do it here, quietly.
                warnings.simplefilter("ignore", DeprecationWarning)
                with contextlib.suppress(ImportError):
                    import imghdr  # noqa: F401
                import apprise
        except ImportError:
            raise ConfigError(
                f"sink {spec.name!r}: type 'apprise' needs the notify extra: "
                "pip install 'nsdi-tracker[notify]'"
            ) from None
        self.spec = spec
        self._apprise = apprise.Apprise()
        for url in spec.urls:
            if not self._apprise.add(url):
                raise ConfigError(f"sink {spec.name!r}: Apprise does not understand {url!r}")
        self._types = apprise.NotifyType

    async def send(self, event: Mapping[str, Any]) -> None:
        title, body = headline_text(event)
        kind = self._types.FAILURE if event["type"] == "removed" else self._types.INFO
        if event["type"] in ("restored", "recovered"):
            kind = self._types.SUCCESS
        ok = await self._apprise.async_notify(body=body, title=title, notify_type=kind)
        if not ok:
            raise DeliveryError("Apprise reported a failed notification")

    async def close(self) -> None:
        pass


def make_sender(spec: SinkSpec, session: aiohttp.ClientSession) -> Sender:
    if spec.type == "webhook":
        return WebhookSender(spec, session)
    if spec.type == "apprise":
        return AppriseSender(spec)
    return LogSender(spec)
