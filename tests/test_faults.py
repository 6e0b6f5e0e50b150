"""Faults found by injecting them into a running tracker on loopback, each kept fixed here.

Every test names the defect it keeps fixed (issue 14) and failed on the code before its fix.
"""

from __future__ import annotations

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
