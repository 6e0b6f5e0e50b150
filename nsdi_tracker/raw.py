"""Every observation of every round, appended to gzip-compressed NDJSON files for researchers.

One file per UTC day (`observations-YYYY-MM-DD.ndjson.gz`); each round appends one gzip member,
which `zcat`, `gzip.open` and pandas read as one stream. A kill during the append can leave a
truncated last member; everything before it stays readable.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsdi_tracker.events import evidence, iso

if TYPE_CHECKING:
    from nsdi_tracker.measure import RoundReport


def raw_lines(report: RoundReport, round_id: int) -> Iterator[dict[str, Any]]:
    roles = {r.name: str(r.role) for r in report.resolvers}
    at = iso(report.finished)
    base = {"round": round_id, "at": at}
    for kind, groups in (("control", report.controls), ("negative", report.negative)):
        for name, observations in groups.items():
            for o in observations:
                yield {**base, "kind": kind, "resolver": name, "role": roles[name],
                       "qname": o.qname, "qtype": o.qtype, **evidence(o)}  # fmt: skip
    for result in report.domains:
        for name, observations in result.observations.items():
            for o in observations:
                yield {**base, "kind": "watch", "resolver": name, "role": roles[name],
                       "qname": o.qname, "qtype": o.qtype, **evidence(o)}  # fmt: skip


def append_round(directory: Path, report: RoundReport, round_id: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"observations-{report.finished:%Y-%m-%d}.ndjson.gz"
    with gzip.open(path, "at", encoding="utf-8") as out:
        for line in raw_lines(report, round_id):
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path
