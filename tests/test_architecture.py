"""The package's shape: no import cycles, TYPE_CHECKING imports included (issue 15).

A cycle closed through a TYPE_CHECKING import is still a type living in the wrong module; the
check reads every `from nsdi_tracker... import` line, indented ones too, so none hides. On
the code before issue 15 it finds the three cycles that issue names: daemon <-> server,
events <-> measure <-> probe, fastwire <-> wire.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nsdi_tracker"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
_FROM = re.compile(r"^\s*from (nsdi_tracker[\w.]*) import (\([^)]*\)|[^\n]*)", re.M)


def imports(package: Path) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        deps = set()
        for base, names in _FROM.findall(path.read_text(encoding="utf-8")):
            if base in modules and base != "nsdi_tracker":
                deps.add(base)
            for n in re.findall(r"\w+", names):  # `from nsdi_tracker.x import module`
                if f"{base}.{n}" in modules:
                    deps.add(f"{base}.{n}")
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = imports(PACKAGE)
    assert len(graph) > 30 and "nsdi_tracker.service.daemon" in graph["nsdi_tracker.cli.measuring"]
    assert cycles(graph) == []


def test_the_check_bites(tmp_path: Path) -> None:
    """A lower module made to import a higher one, under TYPE_CHECKING, in a copy: found."""
    copy = tmp_path / "nsdi_tracker"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "core" / "model.py"
    extra = "\nif TYPE_CHECKING:\n    from nsdi_tracker.service.daemon import Daemon\n"
    model.write_text(model.read_text() + extra)
    (found,) = cycles(imports(copy))
    assert "nsdi_tracker.core.model" in found and "nsdi_tracker.service.daemon" in found


def lint_imports(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts over the package found under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_floors_are_kept(tmp_path: Path) -> None:
    out = lint_imports(ROOT, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_the_floors_contract_bites(tmp_path: Path) -> None:
    """A floor made to import a higher one (in a copy, under TYPE_CHECKING) breaks the contract,
    and the report names the two modules."""
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "nsdi_tracker", ignore=shutil.ignore_patterns("__pycache__"))
    confirm = copy / "nsdi_tracker" / "judge" / "confirm.py"
    extra = "\nimport typing\n\nif typing.TYPE_CHECKING:\n"
    extra += "    from nsdi_tracker.ui.views import age\n"
    confirm.write_text(confirm.read_text() + extra)
    out = lint_imports(copy, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Floors: a package imports only the floors below it BROKEN" in out.stdout
    assert "nsdi_tracker.judge.confirm -> nsdi_tracker.ui.views" in out.stdout


def test_round_statuses_are_one_vocabulary(tmp_path: Path) -> None:
    """RoundStatus is the one list of how a round can end: the database's CHECK constraint
    takes exactly those, the health rule explains each one that did not measure, and the
    dashboard draws each one as a mark (a status added in one place and not the others fails)."""
    from nsdi_tracker.core.model import MEASURED, RoundStatus
    from nsdi_tracker.service import health
    from nsdi_tracker.store.sqlite import Store
    from nsdi_tracker.ui import dashboard, palette

    with Store.open(tmp_path / "t.db") as store:
        sql = store.db.execute("SELECT sql FROM sqlite_master WHERE name = 'rounds'").fetchone()[0]
    allowed = re.search(r"status IN \(([^)]*)\)", sql)
    assert allowed is not None
    assert {s.strip(" '") for s in allowed[1].split(",")} == {s.value for s in RoundStatus}
    unmeasured = set(RoundStatus) - set(MEASURED)
    assert set(health._WHY) == unmeasured
    assert set(dashboard._OFF_ROUND) == unmeasured
    assert set(palette.ROUNDS) == set(RoundStatus)


def test_every_verdict_is_drawn_everywhere() -> None:
    """A verdict added to the vocabulary fails here until the palette gives it a colour, a
    short word, a glyph and a rank (one table: ui.palette)."""
    from nsdi_tracker.core.model import Verdict
    from nsdi_tracker.ui.palette import PALETTE

    assert set(PALETTE) == set(Verdict)
    assert sorted(look.rank for look in PALETTE.values()) == list(range(len(Verdict)))
    assert len({look.block for look in PALETTE.values()}) == len(Verdict)  # without colour
    assert len({look.short for look in PALETTE.values()}) == len(Verdict)


def test_every_verdict_and_event_type_is_placed() -> None:
    """Confirmation names a change by what the verdicts say of the name: each verdict is in
    exactly one of its sets. Each event type has a notification title."""
    from nsdi_tracker.core.model import EventType, Verdict
    from nsdi_tracker.judge.confirm import BLOCKED, RESOLVES, UNSETTLED
    from nsdi_tracker.rounds.events import DOMAIN_TITLES, RESOLVER_EVENTS

    assert sorted([*RESOLVES, *BLOCKED, *UNSETTLED]) == sorted(Verdict)
    assert sorted([*DOMAIN_TITLES, *RESOLVER_EVENTS]) == sorted(EventType)


def test_every_word_is_on_the_page_in_every_language() -> None:
    """The page names every verdict, resolver state, event type, round status, NXDOMAIN look,
    role and reference consensus, and explains every verdict, in English and in Russian; a
    word added to the vocabulary fails here until both are written. Every template's key is
    in the catalog."""
    from nsdi_tracker.core.model import (
        Consensus,
        EventType,
        NxLabel,
        ResolverState,
        Role,
        RoundStatus,
        Verdict,
    )  # fmt: skip
    from nsdi_tracker.web.i18n import CATALOG, LANGS

    wanted = (
        [f"v.{v}" for v in (*Verdict, *ResolverState)]
        + [f"explain.{v}" for v in Verdict]
        + [f"t.{t}" for t in EventType]
        + [f"r.{r}" for r in RoundStatus]
        + [f"nx.{x}" for x in NxLabel]
        + [f"role.{r}" for r in Role]
        + [f"consensus.{c}" for c in Consensus]
    )
    assert [k for k in wanted if k not in CATALOG] == []
    assert all(len(words) == len(LANGS) and all(words) for words in CATALOG.values())
    untranslated = [k for k in wanted if CATALOG[k][0] == CATALOG[k][1]]
    assert untranslated == []
    templates = Path(__file__).parents[1] / "nsdi_tracker" / "web" / "templates"
    used = {
        key
        for t in templates.glob("*.html")
        for key in re.findall(r"""\bw\(["']([\w.]+)["']""", t.read_text())
    }
    assert used and sorted(used - set(CATALOG)) == []


def test_every_transport_and_sink_kind_is_registered() -> None:
    """A transport named in the vocabulary fails here until a module registers it; every sink
    kind the config takes has a sender, and reads its own keys only."""
    from nsdi_tracker.core.model import Transport
    from nsdi_tracker.delivery.sinks import KINDS
    from nsdi_tracker.dns.transports import TRANSPORTS

    assert set(TRANSPORTS) == set(Transport)
    assert all(kind.transport is t for t, kind in TRANSPORTS.items())
    assert sorted(KINDS) == ["apprise", "fleet", "log", "webhook"]
    for name, kind in KINDS.items():
        assert kind.name == name and not kind.keys & {"type", "name", "events", "scopes"}


def test_modules_and_functions_stay_short() -> None:
    """No module over 400 lines; no function over 60 lines unless its docstring says why
    (it starts "Long because")."""
    import ast

    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        if len(text.splitlines()) > 400:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                why = ast.get_docstring(node) or ""
                if lines > 60 and not why.startswith("Long because"):
                    long_functions.append(f"{name}:{node.name} ({lines} lines)")
    assert long_modules == [] and long_functions == []


def test_every_command_is_dispatched() -> None:
    """The CLI's table runs every command its parser knows, and nothing else."""
    import argparse

    from nsdi_tracker.cli import COMMANDS, build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(COMMANDS) == sorted(sub.choices)


def test_log_lines_keep_their_logger_names() -> None:
    """A JSON log line's `logger` is something operators filter and alert on: moving a module
    to another floor does not rename it."""
    from nsdi_tracker.delivery import outbox
    from nsdi_tracker.delivery.sinks import log
    from nsdi_tracker.rounds import tracker
    from nsdi_tracker.service import daemon, delivering, reloading, upkeep

    assert [m.log.name for m in (outbox, log, tracker)] == [
        "nsdi_tracker.outbox", "nsdi_tracker.sinks", "nsdi_tracker.tracker",
    ]  # fmt: skip
    assert {m.log.name for m in (daemon, delivering, reloading, upkeep)} == {"nsdi_tracker.daemon"}
