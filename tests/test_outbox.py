"""Delivery: retries through failures and outages, signatures, stable ids, giving up, sinks."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.delivery.outbox import Outbox, backoff
from nsdi_tracker.delivery.sinks import ID_HEADER, KINDS, SIGNATURE_HEADER, verify
from nsdi_tracker.store.sqlite import Store

SECRET = "s3cret-for-tests"
DOMAINS = ["youtube.com", "whatsapp.com", "bbc.com", "dw.com"]


def webhook(url: str, **kw: object) -> str:
    lines = ["[[sink]]", 'type = "webhook"', f'url = "{url}"', f'secret = "{SECRET}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in kw.items()]
    return "\n".join(lines) + "\n"


async def removals(h: Any, store: Store) -> list[str]:
    """Baseline rounds, then every domain removed for two rounds: one national event each."""
    await h.round(store)
    await h.round(store)
    for d in DOMAINS:
        h.remove(d)
    await h.round(store)
    done = await h.round(store)
    return list(done.changes.queued)


async def test_webhook_survives_failures_and_an_outage(harness: Any, receiver: Any) -> None:
    """First deliveries fail with 500, then the receiver is down: every event still arrives once
    accepted, signed, in order, with the id stored in the database."""
    h = await harness(DOMAINS, extra=webhook(receiver.url, retry_initial=0.05, retry_max=0.2))
    receiver.fail_next = 3
    with Store.open(h.db) as store:
        expected = await removals(h, store)
        assert len(expected) == len(DOMAINS)
        async with Outbox(store, h.config().sinks, rng=random.Random(1)) as outbox:
            await outbox.deliver_due()  # 500: rests the sink
            await receiver.stop()
            assert not await outbox.drain(0.5)  # down: nothing gets through
            await receiver.start()  # back on the same port
            assert await outbox.drain(10)
        assert store.backlog() == {"pending": 0, "delivered": len(DOMAINS), "failed": 0}
        stored = {
            r["event_id"]: r for r in store.changelog() if r["scope"] == "national"
        }  # fmt: skip
    got = [(headers, body) for headers, body in receiver.received]
    ids = [json.loads(body)["id"] for _, body in got]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
    for headers, body in got:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        event = json.loads(body)
        assert headers[ID_HEADER] == event["id"]
        assert event["type"] == "removed" and event["scope"] == "national"
        assert event["version"] == 1 and stored[event["id"]]["domain"] == event["domain"]
        assert event["summary"]["rcode"] == "NXDOMAIN"
        assert event["summary"]["reference_addresses"] == ["142.250.74.46"]
        assert "nsdi-a" in event["evidence"]["resolvers"]


async def test_a_sinks_events_wait_behind_its_oldest(harness: Any, receiver: Any) -> None:
    """A sink's events go in order, also from a process that did not see the oldest fail
    (`run --once` after `run --once`): while it waits for its retry, the newer ones wait."""
    h = await harness(DOMAINS, extra=webhook(receiver.url, retry_initial=3600, retry_max=3600))
    receiver.fail_next = 1
    with Store.open(h.db) as store:
        await removals(h, store)
        order = [
            event_id
            for (event_id,) in store.db.execute(
                "SELECT t.event_id FROM deliveries dl JOIN transitions t "
                "ON t.id = dl.transition_id ORDER BY dl.id"
            )
        ]
        async with Outbox(store, h.config().sinks) as first:
            assert await first.deliver_due() == 1  # the oldest fails: retried in 30-60 min
        async with Outbox(store, h.config().sinks) as fresh:
            assert await fresh.deliver_due() == 0
            # the next look is the oldest's retry, not the newer ones' (due since queued)
            retry = store.next_due(["webhook"])
            assert retry is not None and retry > utcnow() + timedelta(minutes=29)
        assert receiver.received == []
        later = utcnow() + timedelta(hours=1)
        async with Outbox(store, h.config().sinks, clock=lambda: later) as after:
            assert await after.drain(10)
    assert [json.loads(body)["id"] for _, body in receiver.received] == order


async def test_a_tampered_body_does_not_verify() -> None:
    """The signature covers the body: one changed byte fails verification."""
    from nsdi_tracker.delivery.sinks import signature

    body = b'{"id":"x","type":"removed"}'
    assert verify(SECRET, body, signature(SECRET, body))
    assert not verify(SECRET, body.replace(b"removed", b"restored"), signature(SECRET, body))
    assert not verify("other", body, signature(SECRET, body))


async def test_gives_up_after_the_configured_age(harness: Any, receiver: Any) -> None:
    """A receiver that never accepts: the delivery is marked failed once it is old enough."""
    h = await harness(DOMAINS[:1], extra=webhook(receiver.url, retry_initial=0.05, give_up_after=1))
    receiver.fail_next = 10**6
    with Store.open(h.db) as store:
        await removals(h, store)
        async with Outbox(store, h.config().sinks) as outbox:
            assert await outbox.drain(5)  # done: nothing pending any more
        assert store.backlog()["failed"] == 1 and store.backlog()["pending"] == 0
        row = store.db.execute("SELECT attempts, last_error FROM deliveries").fetchone()
    assert row[0] >= 2 and "HTTP 500" in row[1]
    assert receiver.received == []


async def test_a_dead_sink_does_not_hold_up_another(harness: Any, receiver: Any) -> None:
    """A webhook that times out does not delay the log sink's deliveries."""
    log = '[[sink]]\ntype = "log"\nname = "file"\npath = "events.ndjson"\n'
    dead = webhook("http://127.0.0.1:9/none", retry_initial=30)
    h = await harness(DOMAINS, extra=log + dead)
    with Store.open(h.db) as store:
        await removals(h, store)
        async with Outbox(store, h.config().sinks) as outbox:
            assert not await outbox.drain(1)
        lines = (h.tmp_path / "events.ndjson").read_text().splitlines()
        assert len(lines) == len(DOMAINS)
        assert store.backlog() == {"pending": len(DOMAINS), "delivered": len(DOMAINS), "failed": 0}


async def test_scope_and_type_filters(harness: Any) -> None:
    """A sink asking for every scope and baselines gets the per-resolver events too."""
    log = '[[sink]]\ntype = "log"\npath = "all.ndjson"\nscopes = ["*"]\n'
    log += 'events = ["baseline", "removed"]\n'
    h = await harness(DOMAINS[:1], extra=log)
    with Store.open(h.db) as store:
        await removals(h, store)
        async with Outbox(store, h.config().sinks) as outbox:
            assert await outbox.drain(5)
    events = [json.loads(x) for x in (h.tmp_path / "all.ndjson").read_text().splitlines()]
    assert sorted((e["type"], e["scope"]) for e in events) == [
        ("baseline", "national"),
        ("baseline", "nsdi-a"),
        ("removed", "national"),
        ("removed", "nsdi-a"),
    ]


async def test_apprise_notification(harness: Any, receiver: Any) -> None:
    """Through Apprise's json:// URL to a local receiver: title and body name the removal."""
    url = f"json://127.0.0.1:{receiver.port}/hook"
    h = await harness(DOMAINS[:1], extra=f'[[sink]]\ntype = "apprise"\nurls = ["{url}"]\n')
    with Store.open(h.db) as store:
        await removals(h, store)
        async with Outbox(store, h.config().sinks) as outbox:
            assert await asyncio.wait_for(outbox.drain(10), 20)
        assert store.backlog()["delivered"] == 1
    (note,) = receiver.events()
    assert "youtube.com removed from the national DNS" in note["title"]
    assert "NXDOMAIN" in note["message"]


def test_backoff_doubles_with_jitter_up_to_the_ceiling() -> None:
    """Delays double from retry_initial, stay between half and all of the step, never exceed max."""
    from nsdi_tracker.settings.sinks import SinkSpec

    spec = SinkSpec(name="w", type="webhook", retry_initial=1, retry_max=8)
    rng = random.Random(7)
    for attempts, step in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        for _ in range(50):
            assert step / 2 <= backoff(spec, attempts, rng) <= step


def test_sink_config_errors(tmp_path: Path) -> None:
    """Bad sink tables name the key."""
    import pytest

    from nsdi_tracker.core.errors import ConfigError
    from nsdi_tracker.settings.config import load_config

    base = '[[resolver]]\nname = "n"\nrole = "national"\naddress = "127.0.0.1"\n'
    base += '[[resolver]]\nname = "r"\nrole = "reference"\naddress = "127.0.0.1"\n'
    cases = {
        '[[sink]]\ntype = "pager"\n': r"sink\[0\]\.type: 'pager' is not one of",
        '[[sink]]\ntype = "webhook"\nurl = "ftp://x"\n': r"sink\[0\]\.url",
        '[[sink]]\ntype = "log"\nurl = "http://x"\n': r"sink\[0\]\.url: unknown key",
        '[[sink]]\ntype = "log"\nevents = ["gone"]\n': r"sink\[0\]\.events: 'gone'",
        '[[sink]]\ntype = "webhook"\nurl = "http://x"\nsecret_env = "NO_SUCH_VAR_X"\n': (
            r"sink\[0\]\.secret_env: environment variable 'NO_SUCH_VAR_X' is not set"
        ),
        '[[sink]]\ntype = "apprise"\n': r"sink\[0\]\.urls: needs at least one",
    }
    for text, pattern in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(base + text)
        with pytest.raises(ConfigError, match=pattern):
            load_config(path, KINDS)
