"""The offline demo plays the February 2026 story end to end, with the real daemon."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nsdi_tracker import demo


async def test_demo_story_produces_the_expected_transitions(tmp_path: Path) -> None:
    """Removals confirmed in story order; a dark national resolver is one resolver_down and
    one resolver_up line, with no per-name row and no removal announced twice; the CDN name
    changed but never removed, the forged NXDOMAIN seen on the public resolver, the
    restoration; the CSV and the events file are written."""
    said: list[str] = []
    # Rounds every 2 s (speed 3; the interval is never under 1 s): a round of the demo costs
    # about 0.2 s of CPU here, its simulated resolvers included, so a machine three times
    # slower than usual still fits a round, and a dark resolver's timeout, in its interval.
    result = await demo.run(tmp_path / "demo", speed=3, rounds=demo.ROUNDS, say=said.append)
    assert result.rounds == demo.ROUNDS
    story = [s.split(": ", 1)[1] for s in said if ", the story: " in s]
    assert story == [step.say for step in demo.STORY]
    # After each round, what the tracker detected, in words and in order.
    detected = [s.split(": ", 1)[1] for s in said if s.startswith("round ") and "story" not in s]
    removed = "youtube.com removed from the national system, confirmed on nsdi-a and nsdi-b"
    restored = "youtube.com restored in the national system, confirmed on nsdi-a and nsdi-b"
    assert removed in detected and restored in detected
    assert detected.index(removed) < detected.index(restored)
    assert "themoscowtimes.com removed from ru-public (a forged NXDOMAIN)" in detected
    assert detected.count("nsdi-b is down: it fails its controls") == 1
    assert "nsdi-b is up" in detected
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
    dark = [(r["type"], r["domain"]) for r in rows if r["scope"] == "nsdi-b"]
    assert [t for t in dark if t[1] == ""] == [("resolver_down", ""), ("resolver_up", "")]
    assert not {t for t, _ in dark} & {"unreachable", "recovered"}
    # bbc.com and dw.com went while nsdi-b was dark: removed there once it is back.
    down, up = (r for r in rows if r["scope"] == "nsdi-b" and not r["domain"])
    late = [r for r in rows if r["scope"] == "nsdi-b" and r["type"] == "removed"]
    late = [r for r in late if r["first_seen"] > down["confirmed_at"]]
    assert sorted(r["domain"] for r in late) == ["bbc.com", "dw.com"]
    assert all(r["first_seen"] >= up["first_seen"] for r in late)  # seen once it was back
    assert up["rcode"] == "NOERROR" and down["rcode"] == "TIMEOUT"  # the positive controls
    # The headline's reason names the resolvers that made it, not the dark one.
    assert not [r for r in rows if r["scope"] == "national" and "down" in r["reason"]]
    removals = [(r["domain"], r["scope"]) for r in rows if r["type"] == "removed"]
    assert len(removals) == len(set(removals))  # no removal announced twice
    assert not any(r["domain"] == "www.apple.com" and r["to"] == "removed" for r in rows)
    forged = [r for r in rows if r["scope"] == "ru-public"]
    assert [(r["domain"], r["nxdomain"]) for r in forged] == [("themoscowtimes.com", "forged")]
    assert result.events is not None
    events = [json.loads(line) for line in result.events.read_text().splitlines()]
    assert {e["id"] for e in events} == {r["event_id"] for r in rows}
