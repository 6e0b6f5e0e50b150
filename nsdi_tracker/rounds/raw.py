"""Every observation of every round, appended to gzip-compressed NDJSON files for researchers.

One file per UTC day (`observations-YYYY-MM-DD.ndjson.gz`); each round appends one gzip member,
which `zcat`, `gzip.open` and pandas read as one stream. While a round runs, its lines go to a
hidden partial file beside it; the commit appends that whole, so a round that is cut off leaves
no lines behind, and a kill during the append can leave a truncated last member at worst.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsdi_tracker.core.clock import iso
from nsdi_tracker.core.evidence import evidence
from nsdi_tracker.core.model import Observation, Role

if TYPE_CHECKING:
    from nsdi_tracker.rounds.measure import RoundInfo
    from nsdi_tracker.rounds.stream import DomainResult


def _lines(
    base: dict[str, Any],
    kind: str,
    groups: Mapping[str, Iterable[Observation]],
    roles: Mapping[str, Role],
) -> Iterator[dict[str, Any]]:
    for name, observations in groups.items():
        for o in observations:
            yield {**base, "kind": kind, "resolver": name, "role": str(roles[name]),
                   "qname": o.qname, "qtype": o.qtype, **evidence(o)}  # fmt: skip


class RawRound:
    """The raw lines of one streamed round: written as batches come, published at commit."""

    def __init__(self, directory: Path, round_id: int, roles: Mapping[str, Role]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.round_id = round_id
        self.roles = roles
        self.partial = directory / f".round-{round_id}.ndjson.gz.partial"
        self._out = gzip.open(self.partial, "wt", encoding="utf-8")  # noqa: SIM115 (open across batches)

    def add(self, batch: Iterable[DomainResult], at: str) -> None:
        base = {"round": self.round_id, "at": at}
        for result in batch:
            self._write(_lines(base, "watch", result.observations, self.roles))

    def finish(self, info: RoundInfo) -> Path:
        """Add the controls, close the member and append it to the day's file."""
        base = {"round": self.round_id, "at": iso(info.finished)}
        self._write(_lines(base, "control", info.controls, self.roles))
        self._write(_lines(base, "negative", info.negative, self.roles))
        self._out.close()
        path = self.directory / f"observations-{info.finished:%Y-%m-%d}.ndjson.gz"
        with self.partial.open("rb") as member, path.open("ab") as day:
            shutil.copyfileobj(member, day)
        self.partial.unlink()
        return path

    def discard(self) -> None:
        self._out.close()
        self.partial.unlink(missing_ok=True)

    def _write(self, lines: Iterable[dict[str, Any]]) -> None:
        self._out.writelines(
            json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines
        )
