"""The log sink: one JSON object per line, on stdout or appended to a file.

Config: `path` (optional; stdout without it), relative to the config file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nsdi_tracker.delivery.sinks.base import DeliveryError, Kind, Sender, body_of
from nsdi_tracker.settings import keys
from nsdi_tracker.settings.keys import Fail
from nsdi_tracker.settings.sinks import SinkOptions, SinkSpec

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("nsdi_tracker.sinks")  # its name since 0.1: filters use it


@dataclass(frozen=True, slots=True)
class LogOptions(SinkOptions):
    path: Path | None = None  # None: stdout


def _read(item: Mapping[str, Any], key: str, base: Path, fail: Fail) -> LogOptions:
    path = item.get("path")
    return LogOptions(path=None if path is None else keys.path(path, base, f"{key}.path", fail))


class LogSender:
    """One JSON object per line, to stdout or appended to a file.

    A line reaches the file whole or not at all: it is written with one `write` on an
    append-only descriptor, and a write that fails part-way (a full disk) is cut back off. A
    half line left by a crash in the middle of a write is cut off when the file is opened;
    its event was not marked delivered, so it is written again, whole.
    """

    def __init__(self, spec: SinkSpec, stream: TextIO | None = None) -> None:
        self.spec = spec
        self.path = spec.options.path if isinstance(spec.options, LogOptions) else None
        self._stream = stream
        self._fd: int | None = None

    async def send(self, event: Mapping[str, Any]) -> None:
        line = body_of(event) + b"\n"
        try:
            if self._stream is not None or self.path is None:
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
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o644)
            try:
                _cut_partial_line(fd, self.path)
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


def _sender(spec: SinkSpec, session: aiohttp.ClientSession) -> Sender:
    return LogSender(spec)


KIND = Kind(name="log", keys=frozenset({"path"}), read=_read, sender=_sender)
