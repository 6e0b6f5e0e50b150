"""Where events go: a JSON-lines log, a signed webhook, or Apprise notifications.

A sender raises DeliveryError when the receiver did not take the event; the outbox then retries
it later. Senders never decide about retries themselves.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import aiohttp

from nsdi_tracker import __version__
from nsdi_tracker.core import redact
from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.rounds.events import headline_text
from nsdi_tracker.settings.config import SinkSpec, import_apprise

log = logging.getLogger(__name__)

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
    """One JSON object per line, to stdout or appended to a file.

    A line reaches the file whole or not at all: it is written with one `write` on an
    append-only descriptor, and a write that fails part-way (a full disk) is cut back off. A
    half line left by a crash in the middle of a write is cut off when the file is opened;
    its event was not marked delivered, so it is written again, whole.
    """

    def __init__(self, spec: SinkSpec, stream: TextIO | None = None) -> None:
        self.spec = spec
        self._stream = stream
        self._fd: int | None = None

    async def send(self, event: Mapping[str, Any]) -> None:
        line = body_of(event) + b"\n"
        try:
            if self._stream is not None or self.spec.path is None:
                out = self._stream or sys.stdout
                out.write(line.decode())
                out.flush()
            else:
                self._append(line)
        except OSError as exc:
            raise DeliveryError(f"cannot write the log: {exc}") from None

    def _append(self, line: bytes) -> None:
        fd = self._open()
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, f"only {written} of {len(line)} bytes written")
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise

    def _open(self) -> int:
        if self._fd is None:
            assert self.spec.path is not None
            self.spec.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            fd = os.open(self.spec.path, flags, 0o644)
            try:
                _cut_partial_line(fd, self.spec.path)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _cut_partial_line(fd: int, path: Path) -> None:
    """Truncate the file after its last newline, if it does not end with one."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with path.open("rb") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
    os.ftruncate(fd, keep)
    log.warning("%s: cut off a half-written last line (%d bytes)", path, size - keep)


class WebhookSender:
    """POST the event JSON; any 2xx is taken, anything else is retried later."""

    def __init__(self, spec: SinkSpec, session: aiohttp.ClientSession) -> None:
        assert spec.url is not None
        self.spec = spec
        self.url = spec.url
        self.shown = redact.url(spec.url)  # what may be logged or stored of it
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
                    raise DeliveryError(f"HTTP {response.status} from {self.shown}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            why = redact.scrub(str(exc) or "timed out", [self.url])
            raise DeliveryError(f"{type(exc).__name__}: {why}") from None

    async def close(self) -> None:
        pass  # the session belongs to the outbox


class AppriseSender:
    """Telegram, Slack, Matrix, e-mail... through Apprise (`pip install nsdi-tracker[notify]`)."""

    def __init__(self, spec: SinkSpec) -> None:
        try:
            apprise = import_apprise()
        except ImportError:
            raise ConfigError(
                f"sink {spec.name!r}: type 'apprise' needs the notify extra: "
                "pip install 'nsdi-tracker[notify]'"
            ) from None
        self.spec = spec
        self._apprise = apprise.Apprise()
        for i, url in enumerate(spec.urls):  # checked when the config loaded; never shown
            if not self._apprise.add(url):
                raise ConfigError(
                    f"sink {spec.name!r}: Apprise does not understand urls[{i}], a "
                    f"{redact.scheme(url)} URL"
                )
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
