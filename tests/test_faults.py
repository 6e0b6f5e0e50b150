"""Faults found by injecting them into a running tracker on loopback, each kept fixed here.

Every test names the defect it keeps fixed (issue 14) and failed on the code before its fix.
"""

from __future__ import annotations

import json
import os
from typing import Any

from conftest import FAST, run_cli

from nsdi_tracker.store import Store


async def test_backup_refuses_the_database_itself_its_links_and_its_files(
    harness: Any, daemon: Any
) -> None:
    """Defect 1: `backup --db DB DB` replaced the live database under the running daemon.
    Any name of the database (itself, a symlink, a hard link) and its WAL, shared memory,
    journal and lock are refused with exit 2; the database stays sound and in use."""
    h = await harness(["youtube.com"], extra=FAST)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(2)
    inode = h.db.stat().st_ino
    (h.tmp_path / "link.db").symlink_to(h.db)
    os.link(h.db, h.tmp_path / "hard.db")
    targets = {
        str(h.db): "the database itself",
        str(h.tmp_path / "db" / ".." / "db" / "t.db"): "the database itself",
        str(h.tmp_path / "link.db"): "the database itself",
        str(h.tmp_path / "hard.db"): "the database itself",
        f"{h.db}-wal": "write-ahead log",
        f"{h.db}-shm": "shared-memory",
        f"{h.db}-journal": "rollback journal",  # does not exist: still never written
        f"{h.db}.lock": "writer lock",
    }
    for target, what in targets.items():
        code, _, err = await run_cli("backup", "--db", str(h.db), target)
        assert code == 2 and what in err and "Traceback" not in err, (target, err)
    assert not (h.tmp_path / "db" / "t.db-journal").exists()
    assert h.db.stat().st_ino == inode
    mark = len(d.logs)
    await d.wait_rounds(2, start=mark)
    assert await d.stop() == 0
    with Store.open(h.db) as store:
        assert store.integrity() == "ok"
    code, _, err = await run_cli("backup", "--db", str(h.db), str(h.tmp_path / "copy.db"))
    assert code == 0 and "backed up" in err


BAD_QUERIES = {
    "limit=%C2%B2": "limit",  # '²' passes str.isdigit()
    "limit=%E2%91%A0": "limit",  # '①'
    "after=%C2%B3": "after",
    "since=1000000d": "since",
    "until=99999999999w": "until",
    "until=0001-01-01T00:00%2B01:00": "until",
    "since=9999-12-31T23:59:59-23:59": "since",
    "since=%D9%A3d": "since",  # an Arabic-Indic 3
}


async def test_bad_parameters_are_400s_and_exit_2_naming_the_parameter(
    harness: Any, daemon: Any
) -> None:
    """Defect 5: digits that are not ASCII and moments outside datetime's range raised 500s
    (the CSV answered 200 and then aborted) and a CLI traceback."""
    h = await harness(["youtube.com"], extra=FAST)
    d = await daemon(h.cfg_path)
    await d.wait_rounds(1)
    for query, key in BAD_QUERIES.items():
        csv = () if key in ("limit", "after") else ("/api/transitions.csv",)  # not paged
        for path in ("/api/transitions", *csv):
            status, body = await d.get(f"{path}?{query}")
            assert status == 400 and json.loads(body)["error"].startswith(f"{key}: "), (
                path, query, status, body,
            )  # fmt: skip
    assert await d.stop() == 0
    assert not [x for x in d.logs if x["level"] in ("error", "critical", "raw")]
    for option, value in (("--since", "1000000d"), ("--until", "99999999999w"),
                          ("--until", "0001-01-01T00:00+01:00")):  # fmt: skip
        code, out, err = await run_cli("export", "--db", str(h.db), option, value)
        assert code == 2 and f"{option}: " in err and "Traceback" not in err and out == "", err
    for address in ("127.0.0.1:\u00b2", "[::1]:\u2460"):
        cfg = h.cfg_path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "{address}"')
        (h.tmp_path / "bad.toml").write_text(cfg)
        code, _, err = await run_cli("config", "-c", str(h.tmp_path / "bad.toml"))
        assert code == 2 and "http.listen" in err and "Traceback" not in err, err
