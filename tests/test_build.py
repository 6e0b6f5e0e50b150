"""Which build runs: the hot path compiled by mypyc (a wheel built with a C compiler) or pure
Python (an editable install); `make test` runs the suite on both and says which it expects."""

from __future__ import annotations

import ast
import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from conftest import run_cli

import nsdi_tracker


def hot_modules() -> list[str]:
    """The modules hatch_build.py compiles (its HOT), as module names."""
    tree = ast.parse((Path(__file__).parent.parent / "hatch_build.py").read_text())
    (paths,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOT"
    ]
    return [p.removesuffix(".py").replace("/", ".") for p in paths]


async def test_the_build_is_said_and_is_the_one_expected() -> None:
    said = nsdi_tracker.build()
    compiled = {
        name: str(importlib.import_module(name).__file__).endswith(tuple(EXTENSION_SUFFIXES))
        for name in hot_modules()
    }
    assert len(compiled) >= 6 and "nsdi_tracker.dns.fastwire" in compiled
    # every hot module compiled, or none
    assert set(compiled.values()) == {said == "compiled with mypyc"}, compiled
    expected = os.environ.get("NSDI_TRACKER_EXPECT_BUILD")
    if expected:
        assert said == expected
    code, out, _ = await run_cli("--version")
    assert code == 0 and out.strip() == f"nsdi-tracker {nsdi_tracker.__version__} ({said})"
