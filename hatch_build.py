"""The package build's compiled hot path.

A wheel built where a C compiler is at hand carries the modules in HOT compiled by mypyc
(C extensions, found by Python before the sources beside them); without one, or with
NSDI_TRACKER_PURE=1, the wheel is pure Python and runs the same sources, slower.
`nsdi-tracker --version` says which build it is.

An editable install (`pip install -e`, `make venv`) is always pure: an extension beside a
source being edited would go on running the old code. The compiling happens in a copy of
the package in a temporary folder, so the source tree never holds an extension either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# The modules a round spends its time in; each must also run as plain Python.
HOT = (
    "nsdi_tracker/core/model.py",
    "nsdi_tracker/dns/fastwire.py",
    "nsdi_tracker/dns/wire.py",
    "nsdi_tracker/dns/probe.py",
    "nsdi_tracker/dns/transports/udp.py",
    "nsdi_tracker/judge/classify.py",
    "nsdi_tracker/core/evidence.py",
    "nsdi_tracker/core/names.py",
    "nsdi_tracker/rounds/digest.py",
    "nsdi_tracker/rounds/stream.py",
    "nsdi_tracker/rounds/judging.py",
    "nsdi_tracker/dns/latency.py",
    "nsdi_tracker/rounds/ledger.py",
    "nsdi_tracker/rounds/events.py",
    "nsdi_tracker/store/records.py",
    "nsdi_tracker/store/sqlite/staging.py",
)
_SETUP = """
from setuptools import setup
from mypyc.build import mypycify
setup(name="nsdi-tracker-compiled", ext_modules=mypycify(
    ["--ignore-missing-imports", *{modules!r}], opt_level="3"))
"""


def _why_pure() -> str | None:
    """Why this build cannot or should not compile; None if it can."""
    if os.environ.get("NSDI_TRACKER_PURE", "") not in ("", "0"):
        return "NSDI_TRACKER_PURE is set"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    if not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        return "no Python headers (python3-dev)"
    return None


class CompiledBuild(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        why = _why_pure()
        if why is not None:
            self.app.display_info(f"nsdi-tracker: a pure-Python build: {why}")
            return
        try:
            built = _compiled(Path(self.root))
        except (RuntimeError, OSError) as exc:  # mypyc on a Python it does not know, say
            self.app.display_warning(f"nsdi-tracker: a pure-Python build: {exc}")
            return
        for path, inside in built:
            build_data["force_include"][str(path)] = inside
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        self.app.display_info(f"nsdi-tracker: {len(built)} extensions compiled with mypyc")


def _compiled(root: Path) -> list[tuple[Path, str]]:
    """The extensions for this source tree and this Python: (file, path in the wheel).

    Kept in the tree's build/ folder under a digest of HOT, every source and the interpreter,
    because pip builds a wheel twice (once for its metadata, hatchling having no hook for that
    alone), and a compile takes a minute."""
    digest = hashlib.sha256(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    digest.update(repr(HOT).encode())  # a module added to HOT is a new build too
    for source in sorted((root / "nsdi_tracker").rglob("*.py")):
        digest.update(str(source.relative_to(root)).encode() + b"\0" + source.read_bytes())
    cache = root / "build" / f"mypyc-{digest.hexdigest()[:16]}"
    if not (cache / "done").is_file():
        work = Path(tempfile.mkdtemp(prefix="nsdi-tracker-mypyc-"))
        try:
            shutil.copytree(root / "nsdi_tracker", work / "nsdi_tracker")
            (work / "setup.py").write_text(_SETUP.format(modules=list(HOT)))
            done = subprocess.run(
                [sys.executable, "setup.py", "build_ext", "--inplace"],
                cwd=work, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"mypyc failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
            suffix = sysconfig.get_config_var("EXT_SUFFIX")
            out = work / "out"
            for path in work.rglob(f"*{suffix}"):
                inside = path.relative_to(work)
                if inside.parts[0] in ("nsdi_tracker",) or len(inside.parts) == 1:
                    (out / inside).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, out / inside)
            shutil.rmtree(cache, ignore_errors=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(out, cache)
            (cache / "done").write_text("")  # last: a half-copied cache is built again
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [(p, str(p.relative_to(cache))) for p in sorted(cache.rglob("*")) if p.name != "done"
            and p.is_file()]  # fmt: skip
