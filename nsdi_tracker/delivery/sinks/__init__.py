"""Where events go: the kinds of sink, each a module here that declares its config keys, reads
them and sends (log: JSON lines; webhook: signed POSTs; apprise: notifications).

`KINDS` is the registry: the config reads each `[[sink]]` table's own keys through it, and the
outbox makes each sink's sender through it. Adding a sink is a module with a `KIND` and a
line below.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from nsdi_tracker.delivery.sinks import apprise, fleet, log, webhook
from nsdi_tracker.delivery.sinks.base import DeliveryError, Kind, Sender
from nsdi_tracker.delivery.sinks.log import LogSender
from nsdi_tracker.delivery.sinks.webhook import ID_HEADER, SIGNATURE_HEADER, signature, verify
from nsdi_tracker.settings.sinks import SinkSpec

__all__ = [
    "ID_HEADER",
    "KINDS",
    "SIGNATURE_HEADER",
    "DeliveryError",
    "Kind",
    "LogSender",
    "Sender",
    "make_sender",
    "signature",
    "verify",
]

KINDS: Mapping[str, Kind] = {k.name: k for k in (log.KIND, webhook.KIND, apprise.KIND, fleet.KIND)}


def make_sender(spec: SinkSpec, session: aiohttp.ClientSession) -> Sender:
    return KINDS[spec.type].sender(spec, session)
