"""The command line: help for every command, the human table, argument errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_config

from nsdi_tracker.cli import build_parser, main
from nsdi_tracker.sim import Zone, answer, nxdomain


def test_every_command_has_help() -> None:
    """Each subcommand carries help text (shown in `nsdi-tracker --help`)."""
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert subs.choices
    helps = {a.dest: a.help for a in subs._choices_actions}
    for name in subs.choices:
        assert helps.get(name), f"{name} has no help"


def test_config_command_summarises_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`config` validates and prints; it sends no query."""
    assert (
        main(["config", "--config", str(Path(__file__).parent.parent / "nsdi-tracker.toml")]) == 0
    )
    out = capsys.readouterr().out
    assert "nsdi-a" in out and "195.208.4.1" in out and "domains: 21" in out


def test_bad_fail_on_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--fail-on", "removed,gone"])
    assert info.value.code == 2
    assert "'gone' is not a verdict" in capsys.readouterr().err


def test_bad_domain_argument_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, [
        {"name": "n", "role": "national", "address": "127.0.0.1:1"},
        {"name": "r", "role": "reference", "address": "127.0.0.1:1"},
    ])  # fmt: skip
    assert main(["check", "--config", str(cfg), "not a name"]) == 2
    assert "argument 1" in capsys.readouterr().err


async def test_table_output_and_watchlist_option(sim: Any, tmp_path: Path) -> None:
    """Without --json a table shows domain, headline and per-resolver verdicts."""
    nat, ref = Zone(), Zone()
    nat.set("youtube.com", nxdomain())
    ref.set("youtube.com", answer("142.250.74.46"))
    for z in (nat, ref):
        z.set("meduza.io", answer("104.18.30.1"))
    n, r = await sim(nat), await sim(ref)
    cfg = write_config(tmp_path, [
        {"name": "nsdi-a", "role": "national", "address": n.address},
        {"name": "ref", "role": "reference", "address": r.address},
    ])  # fmt: skip
    wl = tmp_path / "w.toml"
    wl.write_text(
        '[[entry]]\ndomain = "youtube.com"\nlabel = "YouTube"\n[[entry]]\ndomain = "meduza.io"\n'
    )
    code, out, err = await run_cli("check", "--config", str(cfg), "-w", str(wl))
    assert code == 0, err
    yt = next(line for line in out.splitlines() if "youtube.com" in line)
    assert "YouTube" in yt and yt.count("removed") == 2 and "exists" in yt
    md = next(line for line in out.splitlines() if "meduza.io" in line)
    assert md.count("present") == 2
    assert "national: 1 removed, 1 present" in out or "national: 1 present, 1 removed" in out
