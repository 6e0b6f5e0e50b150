"""`nsdi-tracker demo`: the February 2026 removals, replayed on loopback in a couple of minutes.

Simulated resolvers (two national, a Russian public one, two references, one of them over DoH
with a throw-away CA), a temporary database and the real daemon with a short interval. A
director changes what the simulated resolvers answer between rounds, following STORY.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsdi_tracker.core.model import NOTABLE_NX, EventType
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.rounds.events import DOMAIN_TITLES
from nsdi_tracker.rounds.tracker import RoundDone
from nsdi_tracker.service.daemon import Daemon, DaemonOptions
from nsdi_tracker.settings.config import Config, load_config
from nsdi_tracker.settings.watchlist import load_watchlists
from nsdi_tracker.sim import (
    CONTROL_ADDRESSES,
    SimDoH,
    SimResolver,
    Zone,
    answer,
    answering,
    nxdomain,
    silent,
)
from nsdi_tracker.store.sqlite import Store

CONTROLS = {**CONTROL_ADDRESSES, "gosuslugi.ru": "213.59.254.7"}
SITES = {
    "youtube.com": "142.250.74.46",
    "whatsapp.com": "157.240.205.60",
    "facebook.com": "157.240.205.35",
    "instagram.com": "157.240.205.174",
    "bbc.com": "151.101.0.81",
    "dw.com": "195.50.179.17",
    "themoscowtimes.com": "104.21.48.10",
    "wikipedia.org": "185.15.59.224",
    "www.apple.com": "23.36.64.12",  # a CDN: national users get another node
}
CDN, CDN_RU = "www.apple.com", "95.101.22.15"


@dataclass(frozen=True, slots=True)
class Step:
    round: int  # the round that first sees it
    say: str
    act: Callable[[World], None]


@dataclass
class World:
    nat_a: Zone
    nat_b: Zone
    ru: Zone
    refs: tuple[Zone, ...]
    log: list[str] = field(default_factory=list)

    def national(self) -> tuple[Zone, Zone]:
        return self.nat_a, self.nat_b

    def remove(self, *names: str) -> None:
        for zone in self.national():
            for n in names:
                zone.set(n, nxdomain())  # what NSDI does: an ordinary NXDOMAIN with its SOA

    def move_cdn(self) -> None:
        for zone in self.national():
            zone.set(CDN, answer(CDN_RU))

    def restore(self, *names: str) -> None:
        for zone in self.national():
            for n in names:
                zone.set(n, answer(SITES[n]))


STORY = (
    Step(3, "youtube.com drops out of both national resolvers", lambda w: w.remove("youtube.com")),
    Step(4, f"{CDN}: the national resolvers send users to another CDN node (not a removal)",
         World.move_cdn),
    Step(5, "WhatsApp, Facebook and Instagram are removed",
         lambda w: w.remove("whatsapp.com", "facebook.com", "instagram.com")),
    Step(7, "nsdi-b goes dark: one resolver_down, its verdicts held (nothing removed)",
         lambda w: setattr(w.nat_b, "outage", silent())),
    Step(8, "bbc.com and dw.com are removed", lambda w: w.remove("bbc.com", "dw.com")),
    Step(9, "the Russian public resolver forges an NXDOMAIN for themoscowtimes.com",
         lambda w: w.ru.set("themoscowtimes.com", nxdomain(soa=False, aa=True))),
    Step(11, "nsdi-b is back: bbc.com and dw.com are gone there too",
         lambda w: setattr(w.nat_b, "outage", None)),
    Step(13, "youtube.com is restored", lambda w: w.restore("youtube.com")),
)  # fmt: skip
ROUNDS = 16
BASE_INTERVAL = 6.0  # seconds at --speed 1


def _zone() -> Zone:
    return answering({**CONTROLS, **SITES})


def _config(
    folder: Path,
    addrs: dict[str, str],
    doh_url: str,
    interval: float,
    events_file: bool,
    listen: str | None,
) -> Path:
    (folder / "watchlist.txt").write_text("\n".join(SITES) + "\n", encoding="utf-8")
    lines = [
        f"controls = {list(CONTROLS)}".replace("'", '"'),
        'watchlists = ["watchlist.txt"]',
        'database = "demo.db"',
        f"interval = {interval:g}",
        f"round_timeout = {interval * 0.9:g}",  # room for a dark resolver's 0.5 s on a busy machine
        "jitter = 0",
        "[[sink]]",
        'type = "log"',
        'scopes = ["*"]',
        *(['path = "events.ndjson"'] if events_file else []),
    ]
    if listen is not None:
        lines[lines.index("[[sink]]") : lines.index("[[sink]]")] = [
            "[http]",
            f'listen = "{listen}"',
        ]
    roles = {"nsdi-a": "national", "nsdi-b": "national", "ru-public": "observed",
             "reference-udp": "reference"}  # fmt: skip
    for name, role in roles.items():
        lines += ["[[resolver]]", f'name = "{name}"', f'role = "{role}"',
                  f'address = "{addrs[name]}"', "timeout = 0.5", "retries = 0"]  # fmt: skip
    lines += ["[[resolver]]", 'name = "reference-doh"', 'role = "reference"',
              'transport = "doh"', f'address = "{doh_url}"', 'ca_file = "demo-ca.pem"',
              "timeout = 0.5", "retries = 1"]  # fmt: skip
    path = folder / "nsdi-tracker.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tls(folder: Path) -> ssl.SSLContext:
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "demo-ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@dataclass(frozen=True, slots=True)
class DemoResult:
    folder: Path
    database: Path
    events: Path | None  # None: they went to stdout
    csv: Path
    rounds: int


async def run(
    folder: Path,
    *,
    speed: float = 1.0,
    rounds: int = ROUNDS,
    say: Callable[[str], None] = print,
    while_running: Callable[[Path, float], asyncio.Future[None]] | None = None,
    events_file: bool = True,
    listen: str | None = None,
) -> DemoResult:
    """Play the story; `while_running(database, interval)` may draw the dashboard meanwhile.
    Events go to FOLDER/events.ndjson, or to stdout without `events_file`. With `listen`
    (host:port), the daemon serves the page and the JSON API there while the story plays."""
    interval = max(BASE_INTERVAL / speed, 1.0)
    world = World(_zone(), _zone(), _zone(), (_zone(), _zone()))
    ctx = _tls(folder)
    async with (
        SimResolver(world.nat_a) as a,
        SimResolver(world.nat_b) as b,
        SimResolver(world.ru) as ru,
        SimResolver(world.refs[0]) as ref,
        SimDoH(world.refs[1], ctx) as doh,
    ):
        addrs = {"nsdi-a": a.address, "nsdi-b": b.address, "ru-public": ru.address,
                 "reference-udp": ref.address}  # fmt: skip
        config = load_config(_config(folder, addrs, doh.url, interval, events_file, listen), KINDS)
        assert config.database is not None
        say(f"demo: {len(SITES)} names, {rounds} rounds every {interval:g} s; database "
            f"{config.database}")  # fmt: skip
        side = while_running(config.database, interval) if while_running else None
        try:
            done = await _play(config, config.database, world, rounds, say)
        finally:
            if side is not None:
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)
        csv_path = folder / "changes.csv"
        _export(config.database, csv_path)
    events = folder / "events.ndjson" if events_file else None
    return DemoResult(folder, config.database, events, csv_path, done)


def narrate(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A round's confirmed transitions (change-log rows) in words, one line per domain and
    kind of change: "youtube.com removed from the national system, confirmed on nsdi-a and
    nsdi-b"; a resolver's own health as "nsdi-b is down"."""
    groups: dict[tuple[str | None, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["type"] != "baseline":
            groups.setdefault((r["domain"], r["type"]), []).append(r)
    lines = []
    for (domain, kind), group in groups.items():
        scopes = [r["scope"] for r in group]
        if domain is None:
            for scope in scopes:
                who = "every national resolver" if scope == "national" else scope
                state = "is down: it fails its controls" if kind == "resolver_down" else "is up"
                lines.append(f"{who} {state}")
            continue
        others = " and ".join(s for s in scopes if s != "national")
        national = "national" in scopes
        where = "the national system" if national else others
        line = DOMAIN_TITLES[EventType(kind)].format(
            name=domain, who=where, old=group[0]["from"], new=group[0]["to"]
        )  # as notifications title it
        if national and others:
            line += f", confirmed on {others}"
        forged = {r["nxdomain"] for r in group} & NOTABLE_NX
        if forged:
            line += f" (a {' and '.join(sorted(forged))} NXDOMAIN)"
        lines.append(line)
    return lines


async def _play(
    config: Config, database: Path, world: World, rounds: int, say: Callable[[str], None]
) -> int:
    """The daemon for `rounds` rounds, the story's next step acted after each; the rounds run."""
    done = seen = 0
    script = sorted(STORY, key=lambda s: s.round)
    with Store.open(database) as store, Store.open_readonly(database) as reader:
        daemon: Daemon

        def after(result: RoundDone | None) -> None:
            nonlocal done, seen
            done += 1
            if result is not None:  # what the tracker detected: the round's transitions
                rows = list(reader.changelog(after=seen))
                seen = max((r["transition_id"] for r in rows), default=seen)
                for line in narrate(rows):
                    say(f"round {result.round_id}: {line}")
            if done == 1 and daemon.listening:
                say(f"the page: http://{daemon.listening}/ (while the demo runs)")
            if done >= rounds:
                daemon.request_stop()
                return
            for step in script:
                if step.round == done + 1:
                    step.act(world)
                    world.log.append(step.say)
                    say(f"round {done + 1}, the story: {step.say}")

        daemon = Daemon(
            config,
            load_watchlists(config.watchlists),
            store,
            DaemonOptions(listen=config.listen, on_round=after, reload_poll=3600),
        )
        await daemon.serve()
    return done


def free_listen(wanted: str) -> str:
    """`wanted` (host:port) if that port is free on its host, else the host with any free
    port: the demo's page should not fail because `make run` holds 8080."""
    host, _, port = wanted.rpartition(":")
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bare, int(port)))
        except OSError:
            return f"{host}:0"
    return wanted


def _export(database: Path, out: Path) -> None:
    from nsdi_tracker.ui.export import write_csv

    with Store.open_readonly(database) as store, out.open("w", encoding="utf-8", newline="") as f:
        write_csv(store.changelog_csv(), f)


def quiet_logs(folder: Path) -> None:
    """Daemon logs go to a file, so that they do not tear through the dashboard."""
    from nsdi_tracker.ui.logs import JsonFormatter

    handler = logging.FileHandler(folder / "demo.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
