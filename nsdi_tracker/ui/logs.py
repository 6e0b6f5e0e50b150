"""Logging set-up: one JSON object per line for machines, rich text for a terminal.

Logs go to stderr; stdout belongs to the log sink's events. A record's structured fields are
passed as `extra={"fields": {...}}` and become top-level keys of its JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nsdi_tracker.core import redact

FORMATS = ("auto", "json", "text")
_known_urls: frozenset[str] = frozenset()


def hide(urls: Iterable[str]) -> None:
    """The sink URLs (webhooks, Apprise) that must never appear whole in a log line."""
    global _known_urls
    _known_urls = frozenset(u for u in urls if u)


class Redact(logging.Filter):
    """Every record's message, fields and traceback with credentials removed (see
    `redact.scrub`), for our own lines and other libraries' alike (Apprise logs the URLs it
    cannot parse). The traceback becomes text: a field for JSON, or part of the message."""

    def __init__(self, *, traceback_in_message: bool) -> None:
        super().__init__()
        self.traceback_in_message = traceback_in_message

    def filter(self, record: logging.LogRecord) -> bool:
        text = redact.scrub(record.getMessage(), _known_urls)
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_info = record.exc_text = None
            trace = redact.scrub(trace, _known_urls)
            if self.traceback_in_message:
                text += "\n" + trace
            else:
                record.traceback = trace
        record.msg, record.args = text, None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                k: redact.scrub(v, _known_urls) if isinstance(v, str) else v
                for k, v in fields.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        trace = getattr(record, "traceback", None)
        if trace:
            line["exception"] = trace
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(level: str, fmt: str = "auto") -> None:
    """Configure the root logger; `auto` is JSON unless stderr is a terminal."""
    handler: logging.Handler
    if fmt == "json" or (fmt == "auto" and not sys.stderr.isatty()):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
    handler.addFilter(Redact(traceback_in_message=not isinstance(handler.formatter, JsonFormatter)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler reports job errors, misses and skips as events; the daemon's listener logs
    # them once, counted in the metrics. Its own messages would say the same thing twice.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
