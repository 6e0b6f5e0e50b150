"""Logging set-up: one JSON object per line for machines, rich text for a terminal.

Logs go to stderr; stdout belongs to the log sink's events. A record's structured fields are
passed as `extra={"fields": {...}}` and become top-level keys of its JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("auto", "json", "text")


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
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler reports job errors, misses and skips as events; the daemon's listener logs
    # them once, counted in the metrics. Its own messages would say the same thing twice.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
