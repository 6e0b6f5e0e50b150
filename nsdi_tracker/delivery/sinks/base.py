"""What every sink shares: the sender protocol, the failure a sender raises, the kind record a
sink module registers, and the bytes an event is sent as.

A sender raises DeliveryError when the receiver did not take the event; the outbox then retries
it later. Senders never decide about retries themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from nsdi_tracker.core import redact
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import SinkOptions, SinkSpec


class DeliveryError(Exception):
    """The receiver did not accept the event (yet)."""


class Sender(Protocol):
    spec: SinkSpec

    async def send(self, event: Mapping[str, Any]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of sink, as its module registers it: the config keys it takes beyond the common
    ones (type, name, events, scopes), how it reads them into its options, and its sender.

    The config floor sees it as a `settings.sinks.SinkKind`."""

    name: str
    keys: frozenset[str]
    read: Callable[[Mapping[str, Any], str, Path, Fail], SinkOptions]
    sender: Callable[[SinkSpec, aiohttp.ClientSession], Sender]

    def options(self, item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> SinkOptions:
        return self.read(item, key, base, fail)


def body_of(event: Mapping[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> tuple[int, str]:
    """POST `body` (no redirects followed): the status and the first 200 bytes of the answer,
    as text. A transport failure is a DeliveryError whose message never shows the URL whole
    (it may carry a credential)."""
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            said = await response.content.read(200)
            return response.status, said.decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        why = redact.scrub(str(exc) or "timed out", [url])
        raise DeliveryError(f"{type(exc).__name__}: {why}") from None
