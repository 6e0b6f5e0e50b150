"""The Apprise sink: Telegram, Slack, Matrix, e-mail... (`pip install nsdi-tracker[notify]`).

Config: `urls` (Apprise URLs, each checked when the config loads, never shown), the retry keys.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nsdi_tracker.core import redact
from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.delivery.sinks.base import DeliveryError, Kind, Sender
from nsdi_tracker.rounds.events import headline_text
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import RETRY_KEYS, SinkOptions, SinkSpec

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True, slots=True)
class AppriseOptions(SinkOptions):
    urls: tuple[str, ...] = ()

    def secrets(self) -> tuple[str, ...]:
        return self.urls


def _read(item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> AppriseOptions:
    urls = keys.str_list(item.get("urls", []), f"{key}.urls", fail)
    if not urls:
        raise fail(f"{key}.urls", "needs at least one Apprise URL, e.g. tgram://token/chat")
    if importlib.util.find_spec("apprise") is None:
        raise fail(f"{key}.type", "apprise needs: pip install 'nsdi-tracker[notify]'")
    for i, url in enumerate(urls):
        if not _understands(url):
            raise fail(
                f"{key}.urls[{i}]",
                f"sink {item['name']!r}: Apprise does not understand this "
                f"{redact.scheme(url)} URL (not shown: it may hold a token); the forms are "
                "listed at https://github.com/caronc/apprise/wiki",
            )
    return AppriseOptions(urls=tuple(urls))


def import_apprise() -> ModuleType:
    """The apprise module (ImportError without the notify extra), imported without the
    DeprecationWarning of the imghdr it imports when it first sends."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(ImportError):
            import imghdr  # noqa: F401
        import apprise
    return apprise


def _understands(url: str) -> bool:
    """Whether Apprise can make a notifier of `url`, asked quietly: Apprise logs the URLs it
    cannot parse, tokens and all."""
    apprise = import_apprise()
    quiet = logging.getLogger("apprise")
    before, quiet.disabled = quiet.disabled, True
    try:
        return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None
    except Exception:  # a plugin's own bug on a strange URL: not understood either
        return False
    finally:
        quiet.disabled = before


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
        assert isinstance(spec.options, AppriseOptions)
        for i, url in enumerate(spec.options.urls):  # checked when the config loaded; never shown
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


def _sender(spec: SinkSpec, session: aiohttp.ClientSession) -> Sender:
    return AppriseSender(spec)


KIND = Kind(name="apprise", keys=frozenset({"urls", *RETRY_KEYS}), read=_read, sender=_sender)
