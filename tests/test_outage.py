"""A national resolver's outage, with real Unbound resolvers: one resolver_down and one
resolver_up in the change log, every verdict held meanwhile, no removal announced twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_config
from test_unbound import UNBOUND_SERVER, free_port, unbound_binary

from nsdi_tracker.core.model import Role, Transport
from nsdi_tracker.delivery.outbox import Outbox
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.dns.probe import ResolverClient
from nsdi_tracker.rounds.tracker import persisted_round
from nsdi_tracker.settings.config import load_config
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.settings.watchlist import load_watchlists
from nsdi_tracker.sim import Zone, answer
from nsdi_tracker.store.sqlite import Store

pytestmark = pytest.mark.unbound

NAMES = [f"site{i:04d}.example.net" for i in range(1000)]
REMOVED = NAMES[:50]  # removed on both national resolvers before the outage
DURING = NAMES[500:505]  # removed while nsdi-b is dark (the second variant)

CONF = (
    UNBOUND_SERVER
    + """\
    num-threads: 1
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: {control}
    control-use-cert: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{upstream}
"""
)


class Unbound:
    """One Unbound on loopback forwarding to the simulated upstream, driven by
    unbound-control (local zones: the NSDI's removals) and by signals (an outage)."""

    def __init__(self, folder: Path, upstream: int) -> None:
        folder.mkdir()
        self.port, control = free_port(), free_port()
        self.conf = folder / "unbound.conf"
        self.conf.write_text(
            CONF.format(port=self.port, dir=folder, upstream=upstream, control=control)
        )
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            unbound_binary(), "-d", "-c", str(self.conf),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        spec = ResolverSpec(
            name="probe", role=Role.NATIONAL, transport=Transport.UDP, address=self.address,
            host="127.0.0.1", port=self.port, timeout=0.5, retries=0,
        )  # fmt: skip
        for _ in range(50):
            async with ResolverClient(spec) as client:
                if (await client.query("ya.ru", "A")).outcome.usable:
                    return
            assert self.proc.returncode is None, "unbound exited"
            await asyncio.sleep(0.1)
        raise AssertionError("unbound did not start answering")

    async def remove(self, names: list[str]) -> None:
        """What the NSDI does: a policy zone that answers NXDOMAIN for each name."""
        control = "/usr/sbin/unbound-control"
        proc = await asyncio.create_subprocess_exec(
            control, "-c", str(self.conf), "local_zones",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        lines = "".join(f"{n} always_nxdomain\n" for n in names).encode()
        out, _ = await asyncio.wait_for(proc.communicate(lines), 10)
        assert proc.returncode == 0, out

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)


@contextlib.asynccontextmanager
async def two_unbounds(tmp_path: Path, upstream: int) -> AsyncIterator[tuple[Unbound, Unbound]]:
    a, b = Unbound(tmp_path / "nsdi-a", upstream), Unbound(tmp_path / "nsdi-b", upstream)
    try:
        await asyncio.gather(a.start(), b.start())
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())


def transitions(store: Store, after: int) -> list[dict[str, Any]]:
    return list(store.changelog(after=after))


@pytest.mark.parametrize("removed_during", [False, True], ids=["outage", "removal-during"])
async def test_a_frozen_national_resolver_is_one_line_not_a_thousand(
    sim: Any, tmp_path: Path, removed_during: bool
) -> None:
    """1,000 names, 50 removed on both national Unbounds and confirmed; nsdi-b frozen
    (SIGSTOP) for 4 rounds, then thawed: exactly one resolver_down and one resolver_up, no
    per-name transition and no event for the removed names, no `removed` row beyond the 50
    per scope. Variant: 5 more names removed during the outage appear as `removed` on nsdi-b
    after the thaw (first seen then), and nothing else does."""
    zone = Zone()
    for i, name in enumerate(NAMES):
        zone.set(name, answer(f"11.{i // 256}.{i % 256}.1"))
    upstream = await sim(zone)
    reference = await sim(Zone(scripts=dict(zone.scripts)))
    async with two_unbounds(tmp_path, upstream.port) as (a, b):
        sink = '[[sink]]\ntype = "log"\npath = "events.ndjson"\nscopes = ["*"]\n'
        # Each frozen round waits one timeout for nsdi-b's controls; 0.5 s was short enough for
        # a busy machine to make Unbounds that answer (nsdi-a, nsdi-b after the thaw) time out.
        fast = "timeout = 2\nretries = 0\nmax_inflight = 64\n"
        cfg = write_config(
            tmp_path,
            [
                {"name": "nsdi-a", "role": "national", "address": a.address},
                {"name": "nsdi-b", "role": "national", "address": b.address},
                {"name": "ref", "role": "reference", "address": reference.address},
            ],
            domains=NAMES,
            extra='database = "t.db"\n' + sink,
        )
        cfg.write_text(cfg.read_text().replace('role = "national"\n', f'role = "national"\n{fast}'))
        config = load_config(cfg, KINDS)
        entries = load_watchlists(config.watchlists)
        events = tmp_path / "events.ndjson"

        def sent() -> list[dict[str, Any]]:
            return (
                [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
            )

        with Store.open(tmp_path / "t.db") as store:

            async def rounds(n: int) -> list[Any]:
                done = [await persisted_round(config, entries, store) for _ in range(n)]
                async with Outbox(store, config.sinks) as outbox:  # what the daemon sends
                    assert await outbox.drain(10)
                return done

            await rounds(2)  # baselines
            await asyncio.gather(a.remove(REMOVED), b.remove(REMOVED))
            await rounds(2)
            log = transitions(store, 0)
            removed = [(t["domain"], t["scope"]) for t in log if t["type"] == "removed"]
            assert sorted(removed) == sorted(
                (n, s) for n in REMOVED for s in ("national", "nsdi-a", "nsdi-b")
            )
            mark, events_before = log[-1]["transition_id"], len(sent())

            b.signal(signal.SIGSTOP)
            try:
                outage = await rounds(1)
                if removed_during:
                    await a.remove(DURING)
                outage += await rounds(3)
                assert [d.record.status for d in outage] == ["partial"] * 4
                # While it is down, its verdicts are held and shown as such.
                held = {r["domain"]: r for r in store.status() if r["scope"] == "nsdi-b"}
                assert all(r["held_since"] for r in held.values()) and len(held) == 1000
                assert held[REMOVED[0]]["verdict"] == "removed"
                assert held[NAMES[-1]]["verdict"] == "present"
                assert store.down_since().keys() == {"nsdi-b"}
            finally:
                b.signal(signal.SIGCONT)
            if removed_during:
                await b.remove(DURING)  # it was gone there too, unseen while b was dark
            back = await rounds(3)
            assert [d.record.status for d in back] == ["ok"] * 3
            assert store.down_since() == {}

            new = transitions(store, mark)
            health = [(t["type"], t["domain"], t["scope"]) for t in new if t["domain"] is None]
            assert health == [("resolver_down", None, "nsdi-b"), ("resolver_up", None, "nsdi-b")]
            per_name = [(t["type"], t["domain"], t["scope"]) for t in new if t["domain"]]
            if not removed_during:
                assert per_name == []
            else:
                expected = {("removed", n, s) for n in DURING for s in ("national", "nsdi-a")}
                expected |= {("removed", n, "nsdi-b") for n in DURING}
                assert sorted(per_name) == sorted(expected)
                up = next(t for t in new if t["type"] == "resolver_up")
                late = [t for t in new if t["domain"] and t["scope"] == "nsdi-b"]
                assert all(t["first_seen"] >= up["first_seen"] for t in late)  # after the thaw
            fresh = sent()[events_before:]
            assert not [e for e in fresh if e["domain"] in REMOVED]  # nothing sent twice
            assert [e["type"] for e in fresh if e["domain"] is None] == [
                "resolver_down",
                "resolver_up",
            ]
    code, out, err = await run_cli(
        "export", "-c", str(cfg), "--type", "removed", "--format", "json"
    )
    assert code == 0, err
    scopes = [r["scope"] for r in json.loads(out)]
    extra = len(DURING) if removed_during else 0
    assert {s: scopes.count(s) for s in set(scopes)} == {
        "national": 50 + extra,
        "nsdi-a": 50 + extra,
        "nsdi-b": 50 + extra,
    }
