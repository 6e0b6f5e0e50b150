"""The fleet sink: a probe's round summaries and confirmed transitions, signed and POSTed to
its fleet's collector (core.submission, core.signing).

It is configured by the `[fleet]` table, not by a `[[sink]]`: `collector` (the collector's
http or https URL), `probe` (this probe's name), `token` or `token_env`, and the descriptive
`isp`, `asn`, `region`; the retry keys as any sink. It hears every change (not baselines) on
every scope, and the outbox's rules hold: stable ids, backoff, giving up, never in a round's way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from nsdi_tracker import __version__
from nsdi_tracker.core import redact, signing
from nsdi_tracker.core.submission import round_body, transition_body
from nsdi_tracker.delivery.sinks.base import DeliveryError, Kind, post
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import RETRY_KEYS, SinkOptions, SinkSpec

SUBMISSIONS = "/api/v1/submissions"


@dataclass(frozen=True, slots=True)
class FleetOptions(SinkOptions):
    collector: str = ""
    probe: str = ""
    token: str = field(default="", repr=False)
    isp: str | None = None
    asn: int | None = None
    region: str | None = None

    def secrets(self) -> tuple[str, ...]:
        return (self.collector,)


def _read(item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> FleetOptions:
    url = item.get("collector")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact.url(url) if isinstance(url, str) else repr(url)
        raise fail(f"{key}.collector", f"{shown}: needs the collector's http:// or https:// URL")
    probe = item.get("probe")
    if not isinstance(probe, str):
        raise fail(f"{key}.probe", "missing: this probe's name ([a-z0-9-])")
    asn = item.get("asn")
    for text in ("isp", "region"):
        if text in item and not isinstance(item[text], str):
            raise fail(f"{key}.{text}", "must be a string")
    assert isinstance(url, str)
    return FleetOptions(
        timeout=keys.number(item.get("timeout", 30.0), f"{key}.timeout", fail, 0.1, 600),
        collector=url.rstrip("/"),
        probe=keys.name(probe, f"{key}.probe", fail),
        token=_token(item, key, fail),
        isp=item.get("isp"),
        asn=None if asn is None else keys.integer(asn, f"{key}.asn", fail, 1, 4_294_967_295),
        region=item.get("region"),
    )


def _token(item: Mapping[str, Any], key: str, fail: Fail) -> str:
    token = keys.secret(item, "token", key, fail, required=True)
    assert token is not None
    if len(token) < signing.MIN_TOKEN:
        raise fail(f"{key}.token", f"must be at least {signing.MIN_TOKEN} characters")
    return token


class FleetSender:
    """POST one submission; 200 (stored, or already stored) is taken, anything else retried."""

    def __init__(self, spec: SinkSpec, session: aiohttp.ClientSession) -> None:
        assert isinstance(spec.options, FleetOptions)
        self.spec = spec
        self.options = spec.options
        self.url = spec.options.collector + SUBMISSIONS
        self.shown = redact.url(self.url)
        self._session = session

    async def send(self, event: Mapping[str, Any]) -> None:
        o = self.options
        if event.get("kind") == "round":
            body = round_body(o.probe, str(event["id"]), event["round"])
        else:
            body = transition_body(o.probe, event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"nsdi-tracker/{__version__}",
            **signing.headers(o.probe, o.token, int(time.time()), body),
        }
        status, said = await post(self._session, self.url, body, headers, self.spec.timeout)
        if status != 200:
            raise DeliveryError(f"HTTP {status} from {self.shown}: {said}")

    async def close(self) -> None:
        pass  # the session belongs to the outbox


_KEYS = {"collector", "probe", "token", "token_env", "isp", "asn", "region", "timeout"}
KIND = Kind(name="fleet", keys=frozenset(_KEYS | RETRY_KEYS), read=_read, sender=FleetSender)
