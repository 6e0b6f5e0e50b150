"""The offline demo plays the February 2026 story end to end, with the real daemon."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nsdi_tracker import demo


async def test_demo_story_produces_the_expected_transitions(tmp_path: Path) -> None:
    """Removals confirmed in story order, a dark national resolver unreachable then
    recovered (never removed), the CDN name changed but never removed, the forged NXDOMAIN
    seen on the public resolver, the restoration; the CSV and the events file are written."""
    said: list[str] = []
    result = await demo.run(tmp_path / "demo", speed=100, rounds=demo.ROUNDS, say=said.append)
    assert result.rounds == demo.ROUNDS
    assert [s.split(": ", 1)[1] for s in said[1:]] == [step.say for step in demo.STORY]
    with result.csv.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["type"] != "baseline"]
    national = [(r["type"], r["domain"]) for r in rows if r["scope"] == "national"]
    assert national == [
        ("removed", "youtube.com"),
        ("changed", "www.apple.com"),
        ("removed", "whatsapp.com"),
        ("removed", "facebook.com"),
        ("removed", "instagram.com"),
        ("removed", "bbc.com"),
        ("removed", "dw.com"),
        ("restored", "youtube.com"),
    ]
    dark = {(r["type"], r["domain"]) for r in rows if r["scope"] == "nsdi-b"}
    assert ("unreachable", "wikipedia.org") in dark and ("recovered", "wikipedia.org") in dark
    assert not any(r["domain"] == "www.apple.com" and r["to"] == "removed" for r in rows)
    forged = [r for r in rows if r["scope"] == "ru-public"]
    assert [(r["domain"], r["nxdomain"]) for r in forged] == [("themoscowtimes.com", "forged")]
    assert result.events is not None
    events = [json.loads(line) for line in result.events.read_text().splitlines()]
    assert {e["id"] for e in events} == {r["event_id"] for r in rows}
