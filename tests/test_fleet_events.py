"""Fleet-level transitions against a real PostgreSQL: the collector evaluates the probes'
latest verdicts, confirms a new fleet verdict over `confirm` evaluations that had something
new, stores each confirmed change once, and delivers it to real sinks on loopback (a signed
webhook, Apprise, a log file) naming the probes and networks. Two collectors on one database
announce each change once; a dead receiver gets it when back; a collector that dies holding
a sink is replaced."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from conftest import Receiver

from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.core.submission import RoundSummary, parse, round_body
from nsdi_tracker.delivery.sinks import KINDS, verify
from nsdi_tracker.service.collector import Collector
from nsdi_tracker.settings.collector import load_collector
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.postgres.fleet import FleetStore
from nsdi_tracker.store.postgres.queue import FleetQueue

PROBES = {"msk-1": 12389, "spb-1": 8359, "ekb-1": 31133}
SECRET = "hook-secret-0123456789"


def collector_toml(tmp_path: Path, dsn: str, sinks: str, fleet: str = "") -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'listen = "127.0.0.1:0"\ndatabase = "{dsn}"\n[fleet]\nconfirm = 2\n{fleet}'
        + "".join(
            f'[[probe]]\nname = "{n}"\ntoken = "{n}-token-0123456789"\nasn = {asn}\n'
            f'isp = "ISP {n}"\n'
            for n, asn in PROBES.items()
        )
        + sinks
    )
    return path


class Fleet:
    """Collectors on one database, and probes' rounds put straight into it."""

    def __init__(self, tmp_path: Path, dsn: str, sinks: str, fleet: str = "") -> None:
        self.config = load_collector(collector_toml(tmp_path, dsn, sinks, fleet), KINDS)
        self.dsn = dsn
        self.offset = 0.0  # the collectors' clock runs this far ahead of the real one
        self.rounds: dict[str, int] = dict.fromkeys(PROBES, 0)
        self.stores: list[FleetStore] = []

    def clock(self) -> float:
        return time.time() + self.offset

    async def collector(self, lease: float = 60.0) -> Collector:
        store = await FleetStore.open(self.dsn)
        self.stores.append(store)
        c = Collector(self.config, store, self.clock, lease=lease)
        await c.prepare()
        return c

    async def report(self, probe: str, verdicts: dict[str, str]) -> None:
        """A round of `probe` that just finished, with these national verdicts."""
        self.rounds[probe] += 1
        at = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        body = round_body(probe, str(uuid.uuid4()), {
            "id": self.rounds[probe], "started": at, "finished": at, "status": "ok",
            "interval": 60, "resolvers": {"nsdi": {"role": "national", "up": True}},
            "domains": [[d, v, {"nsdi": v}] for d, v in verdicts.items()],
        })  # fmt: skip
        sub = parse(body)
        assert isinstance(sub, RoundSummary)
        store = self.stores[0]
        probe_id = (await store.register([{"name": probe, "asn": PROBES[probe]}]))[probe]
        assert await store.add_round(probe_id, sub, uuid.uuid4().hex, datetime.now(UTC))

    async def everyone(self, verdicts: dict[str, str], **special: dict[str, str]) -> None:
        """A round of every probe, a minute after the last."""
        self.offset += 60
        for probe in PROBES:
            await self.report(probe, {**verdicts, **special.get(probe.replace("-", "_"), {})})

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


@pytest.fixture
async def fleet(tmp_path: Path, pg: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[Fleet] = []

    def make(sinks: str, fleet: str = "") -> Fleet:
        f = Fleet(tmp_path, pg, sinks, fleet)
        made.append(f)
        return f

    yield make
    for f in made:
        await f.close()


def webhook(receiver: Receiver) -> str:
    return f'[[sink]]\ntype = "webhook"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'


def kinds(events: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    return [(e["domain"], e["type"]) for e in events or []]


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_removal_and_a_filtering_are_confirmed_once_and_delivered(
    fleet: Callable[..., Fleet], receiver: Receiver, tmp_path: Path
) -> None:
    apprise = f"json://127.0.0.1:{receiver.port}/apprise"
    f = fleet(
        webhook(receiver) + f'[[sink]]\ntype = "log"\npath = "{tmp_path / "fleet.ndjson"}"\n'
        f'[[sink]]\ntype = "apprise"\nurls = ["{apprise}"]\nevents = ["removed"]\n'
    )
    c = await f.collector()
    present = {"youtube.com": "present", "bbc.com": "present"}
    assert kinds(await c.evaluate()) == []  # nobody has reported: nothing to say
    assert await c.evaluate() is None  # and nothing came in since
    await f.everyone(present)
    assert kinds(await c.evaluate()) == []  # seen once: not yet confirmed
    await f.everyone(present)
    assert kinds(await c.evaluate()) == [("bbc.com", "baseline"), ("youtube.com", "baseline")]
    # The removal reaches one network first: pending there, announced nowhere.
    await f.report("msk-1", {**present, "youtube.com": "removed"})
    assert kinds(await c.evaluate()) == []
    await f.report("spb-1", {**present, "youtube.com": "removed"})
    await f.report("ekb-1", {"youtube.com": "removed", "bbc.com": "removed"})
    assert kinds(await c.evaluate()) == []  # removed (and filtered) seen once
    await f.everyone({**present, "youtube.com": "removed"}, ekb_1={"bbc.com": "removed"})
    confirmed = await c.evaluate()
    assert kinds(confirmed) == [("bbc.com", "filtered"), ("youtube.com", "removed")]
    assert confirmed is not None
    filtered, removed = confirmed
    assert removed["scope"] == "fleet" and removed["from"] == "present"
    assert removed["networks"] == ["AS12389", "AS31133", "AS8359"] and removed["rounds"] == 2
    assert removed["probes"] == {"blocked": ["ekb-1", "msk-1", "spb-1"], "resolving": [],
                                 "stale": []}  # fmt: skip
    assert [p["national"] for p in removed["evidence"]["probes"]] == ["removed"] * 3
    assert filtered["networks"] == ["AS31133"]
    assert filtered["probes"]["resolving"] == ["msk-1", "spb-1"]
    await f.everyone({**present, "youtube.com": "removed"}, ekb_1={"bbc.com": "removed"})
    assert kinds(await c.evaluate()) == []  # the same verdicts: nothing twice

    # Delivered by the collector's outbox: signed, each once; Apprise only the removal.
    async with c.running(Listen("127.0.0.1", 0)) as address:
        await until(lambda: len(receiver.received) == 3)
        base = f"http://{address}"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/api/fleet/transitions") as r:
                listed = await r.json()
            async with session.get(base + "/api/fleet/transitions.csv?type=removed") as r:
                table = await r.text()
            async with session.get(base + "/api/fleet/domains/youtube.com") as r:
                one = await r.json()
            async with session.get(base + "/api/fleet/status") as r:
                status = await r.json()
            async with session.get(base + "/metrics") as r:
                metrics = await r.text()
    hooks = [(h, b) for h, b in receiver.received if h.get("X-NSDI-Tracker-Event")]
    assert sorted(json.loads(b)["type"] for _, b in hooks) == ["filtered", "removed"]
    assert all(verify(SECRET, b, h["X-NSDI-Tracker-Signature-256"]) for h, b in hooks)
    (note,) = [json.loads(b) for h, b in receiver.received if not h.get("X-NSDI-Tracker-Event")]
    assert note["title"] == (
        "youtube.com removed from the national DNS, seen in AS12389, AS31133, AS8359"
    )
    assert "blocked at: ekb-1, msk-1, spb-1" in note["message"]
    logged = [json.loads(line) for line in (tmp_path / "fleet.ndjson").read_text().splitlines()]
    assert kinds(logged) == [("bbc.com", "filtered"), ("youtube.com", "removed")]
    # no baselines unless asked
    assert sorted(t["type"] for t in listed["transitions"]) == ["filtered", "removed"]
    assert "AS12389 AS31133 AS8359" in table and "bbc.com" not in table
    assert one["confirmed"]["verdict"] == "removed"
    assert [t["type"] for t in one["transitions"]] == ["removed", "baseline"]
    youtube = next(d for d in status["domains"] if d["domain"] == "youtube.com")
    assert youtube["confirmed"] == "removed" and youtube["verdict"] == "removed"
    assert 'nsdi_collector_deliveries_total{result="delivered",sink="webhook"} 2.0' in metrics
    assert 'nsdi_collector_fleet_events_total{type="removed"} 1.0' in metrics

    # Another collector later: nothing is sent again.
    again = await f.collector()
    async with again.running(Listen("127.0.0.1", 0)):
        await asyncio.sleep(1.0)
    assert len(receiver.received) == 3


async def test_stale_probes_are_not_counted_and_a_restoration_is_announced(
    fleet: Callable[..., Fleet], receiver: Receiver
) -> None:
    f = fleet(webhook(receiver))
    c = await f.collector()
    for _ in range(2):
        await f.everyone({"youtube.com": "removed"})
        await c.evaluate()
    (state,) = (await c.store.fleet_states()).values()
    assert state["verdict"] == "removed"
    # An hour later only msk-1 reports (the others are stale, their "removed" not counted):
    # one probe in one network is too few to say anything; the removal stands.
    f.offset += 3600
    for _ in range(3):
        await f.report("msk-1", {"youtube.com": "removed"})
        assert kinds(await c.evaluate()) == []
    (state,) = (await c.store.fleet_states()).values()
    assert state["verdict"] == "removed" and state["candidate"] is None
    # spb-1 is back and sees it resolve: an ISP's filtering at AS12389, not the NSDI's.
    for _ in range(2):
        await f.report("msk-1", {"youtube.com": "removed"})
        await f.report("spb-1", {"youtube.com": "present"})
        confirmed = await c.evaluate()
    assert kinds(confirmed) == [("youtube.com", "filtered")]
    assert confirmed is not None
    assert confirmed[0]["networks"] == ["AS12389"] and confirmed[0]["from"] == "removed"
    assert confirmed[0]["probes"]["stale"] == ["ekb-1"]
    # Then it resolves at both: restored.
    for _ in range(2):
        await f.report("msk-1", {"youtube.com": "present"})
        await f.report("spb-1", {"youtube.com": "present"})
        confirmed = await c.evaluate()
    assert kinds(confirmed) == [("youtube.com", "restored")]
    types = [r[1] for r in await _transitions(f.dsn)]
    assert types == ["removed", "filtered", "restored"]


async def _transitions(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT domain, type, networks FROM fleet_transitions ORDER BY confirmed_at"
        ).fetchall()


async def test_two_collectors_announce_each_change_once(
    fleet: Callable[..., Fleet], receiver: Receiver
) -> None:
    f = fleet(webhook(receiver), fleet="evaluate_every = 0.1\n")
    # (the test's clock jumps a minute a round: a lease of an hour outlasts the test)
    a, b = await f.collector(lease=3600), await f.collector(lease=3600)
    receiver.delay = 2.0  # a slow receiver: a second sender would be at it meanwhile

    def queued() -> bool:
        with psycopg.connect(f.dsn) as conn:
            return conn.execute("SELECT COUNT(*) FROM fleet_deliveries").fetchone() == (1,)

    async with a.running(Listen("127.0.0.1", 0)), b.running(Listen("127.0.0.1", 0)):
        for verdict in ("present", "present", "present", "removed", "removed", "removed"):
            await f.everyone({"youtube.com": verdict})
            await asyncio.sleep(0.3)  # a few evaluations by either, most with nothing new
        await until(queued)
        for c in (a, b):  # both look at the queue while the first send is under way
            assert c.outbox is not None
            c.outbox.wake()
        await until(lambda: len(receiver.received) >= 1)
        await asyncio.sleep(2.5)  # time for a second, wrong, delivery
    assert kinds(receiver.events()) == [("youtube.com", "removed")]
    assert [r[:2] for r in await _transitions(f.dsn)] == [
        ("youtube.com", "baseline"), ("youtube.com", "removed")]  # fmt: skip


async def test_a_dead_receiver_and_a_dead_collector_lose_nothing(
    fleet: Callable[..., Fleet], receiver: Receiver
) -> None:
    sink = webhook(receiver) + "retry_initial = 0.1\nretry_max = 0.2\n"
    f = fleet(sink)
    c = await f.collector(lease=0.5)
    for _ in range(2):
        await f.everyone({"youtube.com": "removed"})
        await c.evaluate()
    # A collector took the sink and died holding it: its lease runs out, then this one sends.
    dead = FleetQueue(f.dsn, holder="dead", lease=2.0)
    dead.open()
    try:
        assert dead.due(datetime.fromtimestamp(f.clock(), UTC), ["webhook"]) != []
    finally:
        dead.close()
    receiver.fail_next = 3  # and the receiver fails three times before it takes it
    started = time.monotonic()
    async with c.running(Listen("127.0.0.1", 0)):
        await until(lambda: len(receiver.received) == 1)
    assert time.monotonic() - started > 1.8  # not before the dead one's lease ended
    assert kinds(receiver.events()) == [("youtube.com", "removed")]
    with psycopg.connect(f.dsn) as conn:
        assert conn.execute("SELECT state, attempts FROM fleet_deliveries").fetchall() == [
            ("delivered", 4)
        ]


async def test_a_sinks_events_wait_behind_its_oldest(
    fleet: Callable[..., Fleet], receiver: Receiver
) -> None:
    """A sink's events go in order, also from a collector that did not see the oldest fail:
    while that one waits for its retry, the newer ones wait with it."""
    f = fleet(webhook(receiver))
    c = await f.collector()
    for verdict in ("removed", "removed", "present", "present"):
        await f.everyone({"youtube.com": verdict})
        await c.evaluate()
    now = datetime.fromtimestamp(f.clock(), UTC)
    retry = now + timedelta(hours=1)
    with psycopg.connect(f.dsn) as conn:
        first, second = (i for (i,) in conn.execute("SELECT id FROM fleet_deliveries ORDER BY id"))
        conn.execute("UPDATE fleet_deliveries SET next_attempt = %s WHERE id = %s", (retry, first))
    other = FleetQueue(f.dsn, holder="other")
    other.open()
    try:
        assert other.due(now, ["webhook"]) == []  # the newer one is due, but not the oldest
        assert other.next_due(["webhook"]) == retry
        due = other.due(retry, ["webhook"])
    finally:
        other.close()
    assert [d.id for d in due] == [first, second]
    assert kinds([d.event for d in due]) == [
        ("youtube.com", "removed"),
        ("youtube.com", "restored"),
    ]


def test_collector_sink_config_errors(tmp_path: Path) -> None:
    """A collector's sinks are a probe's [[sink]] tables, without scopes or a fleet sink."""
    cases = {
        '[[sink]]\ntype = "webhook"\nurl = "http://x"\nscopes = ["national"]\n': (
            "sink[0].scopes: a collector's sinks hear fleet events only"
        ),
        '[[sink]]\ntype = "fleet"\n': "sink[0].type: a fleet sink belongs in a probe's config",
        '[[sink]]\ntype = "pager"\n': "sink[0].type: 'pager' is not one of",
        '[[sink]]\ntype = "webhook"\nurl = "ftp://x"\n': "sink[0].url",
        "[fleet]\nconfirm = 0\n": "fleet.confirm",
        "[fleet]\nevaluate_every = 0\n": "fleet.evaluate_every",
    }
    for extra, message in cases.items():
        path = tmp_path / "c.toml"
        fleet = extra.startswith("[fleet]")  # a table before the probes; sinks after them
        text = 'database = "postgresql://x"\n' + (extra if fleet else "")
        text += '[[probe]]\nname = "p"\ntoken = "p-token-0123456789"\n'
        text += "" if fleet else extra
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_collector(path, KINDS)
        assert str(err.value).startswith(f"{path}: {message}"), str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'colour = 1\ndatabase = "postgresql://x"\n',
            "colour: unknown key (known: database, database_env, fleet, listen, max_body, probe, "
            "sink)",
        ),
        (
            'database = "postgresql://x"\n[fleet]\nquorum = 2\n[[probe]]\nname = "p"\n'
            'token = "p-token-0123456789"\n',
            "fleet.quorum: unknown key (known: confirm, evaluate_every, min_networks, min_probes, "
            "stale_intervals)",
        ),
        (
            'database = "postgresql://x"\n[[probe]]\nname = "p"\ntoken = "p-token-0123456789"\n'
            "as = 8359\n",
            "probe[0] (p).as: unknown key (known: asn, isp, name, region, token, token_env)",
        ),
    ],
)
def test_collector_unknown_keys(tmp_path: Path, text: str, message: str) -> None:
    """A key the collector does not know is named, with its table and the keys it knows."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_collector(path, KINDS)
    assert str(err.value) == f"{path}: {message}"
