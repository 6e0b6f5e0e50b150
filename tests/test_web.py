"""The web page over HTTP: a real status server on loopback serving a database that real
rounds (simulated resolvers) wrote. Pages, filters, escaping, languages, path prefixes, the
Atom feed, the downloads, and `nsdi-tracker serve --db` as a process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from atom import ATOM, validate
from conftest import run_cli

from nsdi_tracker.service.publish import Publisher
from nsdi_tracker.service.server import start
from nsdi_tracker.settings.config import Listen
from nsdi_tracker.store.sqlite import Store
from nsdi_tracker.web.i18n import negotiate

EVIL_LABEL = '<script>alert("label")</script>'
EVIL_CATEGORY = '"><img src=x onerror=alert(1)>'
WATCH = f"""
[[entry]]
domain = "youtube.com"
label = {json.dumps(EVIL_LABEL)}
category = "video"

[[entry]]
domain = "bbc.com"
label = "BBC"
category = {json.dumps(EVIL_CATEGORY)}

[[entry]]
domain = "meduza.io"
label = "Meduza"
category = "news"
"""


@pytest.fixture
async def recorded(harness: Any) -> Any:
    """Four rounds on three names (labels and a category that try to inject markup): the
    baselines, then youtube.com removed from the national resolver and confirmed."""
    h = await harness(["youtube.com", "bbc.com", "meduza.io"])
    (h.tmp_path / "watch.toml").write_text(WATCH)
    h.cfg_path.write_text(h.cfg_path.read_text().replace('"watch.txt"', '"watch.toml"'))
    with Store.open(h.db) as store:
        await h.round(store)
        await h.round(store)
        h.remove("youtube.com")
        await h.round(store)
        await h.round(store)
    return h


class Site:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        async with self.session.get(self.base + path, headers=headers) as r:
            return r.status, await r.text(), dict(r.headers)


@pytest.fixture
async def site() -> AsyncIterator[Callable[..., Any]]:
    """Serve a database (as `serve --db` does) on a free loopback port."""
    stops: list[Callable[[], Any]] = []
    session = aiohttp.ClientSession()

    async def make(db: Path, base_path: str = "") -> Site:
        publisher = Publisher(db, base_path=base_path)
        await publisher.refresh()
        runner, address = await start(publisher, Listen("127.0.0.1", 0))

        async def stop() -> None:
            await runner.cleanup()
            publisher.close()

        stops.append(stop)
        return Site(f"http://{address}", session)

    yield make
    for stop in stops:
        await stop()
    await session.close()


def rows(html: str) -> list[tuple[str, str]]:
    """(domain, national verdict) of the overview's rows, in order."""
    return re.findall(r'<tr data-domain="([^"]+)" data-verdict="([^"]+)">', html)


async def test_overview_orders_filters_and_searches(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    status, html, headers = await s.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # removed first; then by category ('"><img...' sorts before "news") and name
    assert rows(html) == [("youtube.com", "removed"), ("bbc.com", "present"),
                          ("meduza.io", "present")]  # fmt: skip
    assert 'class="badge v-removed">1 removed<' in html
    assert "Last round #4: ok" in html
    _, html, _ = await s.get("/?verdict=present")
    assert [d for d, _ in rows(html)] == ["bbc.com", "meduza.io"]
    _, html, _ = await s.get("/?q=MEDU")
    assert [d for d, _ in rows(html)] == ["meduza.io"]
    _, html, _ = await s.get("/?category=video")
    assert [d for d, _ in rows(html)] == ["youtube.com"]
    _, html, _ = await s.get("/?q=nothing-like-this")
    assert rows(html) == [] and "No watched domain matches." in html
    status, html, _ = await s.get("/?verdict=gone")
    assert status == 400 and "verdict: &#39;gone&#39; is not one of" in html
    for page in ("0", "²", "9" * 5000):  # not ASCII digits, or too many for int()
        status, html, _ = await s.get(f"/?page={page}")
        assert status == 400 and "page:" in html, page


async def test_a_stopped_daemon_is_said_plainly(recorded: Any, site: Any) -> None:
    """The last round ended two hours ago and was due every minute: the overview says the
    tracker may be stopped, in both languages; a fresh round says nothing of the kind."""
    s = await site(recorded.db)
    _, html, _ = await s.get("/")
    assert 'id="stale"' not in html
    with Store.open(recorded.db) as store:
        store.db.execute(
            "UPDATE rounds SET interval = 60, "
            "finished = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')"
        )
        store.db.conn.commit()
    s = await site(recorded.db)  # a round's reads are kept until the next round: a new server
    _, html, _ = await s.get("/")
    assert "The last round was 2 h ago, but rounds are due every 1 min" in html
    _, html, _ = await s.get("/?lang=ru")
    assert "Последний раунд был 2 ч назад, а раунды должны идти каждые 1 мин" in html


async def test_paging_through_many_domains(harness: Any, site: Any) -> None:
    """250 names: three pages of 100, 100 and 50, each name once, links between them."""
    names = [f"name{i:03d}.example" for i in range(250)]
    h = await harness(names)
    with Store.open(h.db) as store:
        await h.round(store)
    s = await site(h.db)
    seen: list[str] = []
    for number, size in ((1, 100), (2, 100), (3, 50)):
        _, html, _ = await s.get(f"/?page={number}")
        page_rows = [d for d, _ in rows(html)]
        assert len(page_rows) == size
        seen += page_rows
        assert f"{(number - 1) * 100 + 1}–{(number - 1) * 100 + size} of 250" in html
        assert ('rel="next"' in html) == (number < 3) and ('rel="prev"' in html) == (number > 1)
    assert sorted(seen) == names


async def test_everything_from_dns_and_config_is_escaped(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    for path in ("/", "/domains/youtube.com", "/domains/bbc.com", "/changes", "/feed.atom"):
        _, body, headers = await s.get(path)
        assert EVIL_LABEL not in body and "<img src=x" not in body, path
    _, html, headers = await s.get("/")
    assert "&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;" in html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    # Nothing is fetched from another site: every src and href stays on this one.
    for path in ("/", "/domains/youtube.com", "/changes", "/resolvers"):
        _, html, _ = await s.get(path)
        for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
            assert ref.startswith(("/", "?", "#")), (path, ref)


async def test_domain_page_timeline_and_transitions(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    status, html, _ = await s.get("/domains/YouTube.com.")
    assert status == 200
    svg = html[html.index("<svg") : html.index("</svg>")]
    lanes = re.findall(r'class="lane">([^<]+)<', svg)
    assert lanes == ["national", "nsdi-a"]
    spans = re.findall(r'class="span v-(\w+)"', svg)
    assert spans.count("present") == 2 and spans.count("removed") == 2
    events = re.findall(r'<tr id="t-([0-9a-f-]{36})" class="" data-type="(\w+)"', html)
    assert [t for _, t in events][:2] == ["removed", "removed"]  # newest first
    assert "the answer was NXDOMAIN" in html
    assert "the reference resolvers: the name exists, at 142.250.74.46" in html
    # Each transition's permanent page says what happened, with its evidence and a citation.
    event_id = events[0][0]
    status, page, _ = await s.get(f"/changes/{event_id}")
    assert status == 200 and "youtube.com: removed on" in page
    assert "the answer was NXDOMAIN" in page and f"event {event_id}" in page
    assert (await s.get("/changes/00000000-0000-0000-0000-000000000000"))[0] == 404
    status, html, _ = await s.get("/domains/never-measured.example")
    assert status == 404 and "never-measured.example has never been measured." in html
    status, html, _ = await s.get("/domains/bad..name")
    assert status == 400 and "domain:" in html


async def test_russian_by_header_or_query(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    _, html, headers = await s.get("/", **{"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert headers["Content-Language"] == "ru" and '<html lang="ru">' in html
    assert ">удалён: 1<" in html and "Итог по НСДИ" in html
    assert "youtube.com" in html  # domain data as it is
    _, html, _ = await s.get("/domains/youtube.com?lang=ru")
    assert "ответ: NXDOMAIN" in html and 'href="/changes/' in html
    assert "?lang=ru" in html  # links keep the chosen language
    _, html, _ = await s.get("/?lang=en", **{"Accept-Language": "ru"})
    assert '<html lang="en">' in html


def test_language_negotiation() -> None:
    assert negotiate(None, None) == "en"
    assert negotiate("ru", "en") == "ru"
    assert negotiate("de", "ru") == "ru"  # a language we lack is no choice
    assert negotiate(None, "en-US,en;q=0.9,ru;q=0.8") == "en"
    assert negotiate(None, "de-DE,de;q=0.9,ru;q=0.5,en;q=0.4") == "ru"
    assert negotiate(None, "ru;q=0, en") == "en"
    assert negotiate(None, "ru;q=bad") == "en"
    assert negotiate(None, "*") == "en"


async def test_links_carry_the_path_prefix(recorded: Any, site: Any) -> None:
    """Behind a reverse proxy under /nsdi: from [http] base_path, or X-Forwarded-Prefix (which
    wins); a prefix that is not a plain path is ignored, never echoed."""
    s = await site(recorded.db, base_path="/nsdi")
    _, html, _ = await s.get("/")
    hrefs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert hrefs and all(h.startswith("/nsdi/") for h in hrefs), hrefs
    assert 'action="/nsdi/"' in html
    _, html, _ = await s.get("/", **{"X-Forwarded-Prefix": "/tools/nsdi/"})
    assert 'href="/tools/nsdi/domains/youtube.com"' in html
    _, html, _ = await s.get("/", **{"X-Forwarded-Prefix": '/x"><script>'})
    assert "<script>" not in html and 'href="/nsdi/domains/youtube.com"' in html
    _, feed, _ = await s.get(
        "/feed.atom", **{"X-Forwarded-Prefix": "/p", "X-Forwarded-Proto": "https",
                         "Host": "tracker.example"}
    )  # fmt: skip
    assert 'href="https://tracker.example/p/changes/' in feed
    _, feed, _ = await s.get("/feed.atom", **{"X-Forwarded-Proto": "javascript"})
    assert 'href="http://127.0.0.1:' in feed  # only http or https is taken


async def test_atom_feed_is_valid_and_holds_the_removal(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    status, body, headers = await s.get("/feed.atom")
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    feed = validate(body.encode())
    entries = feed.findall(ATOM + "entry")
    titles = [e.findtext(ATOM + "title") for e in entries]
    assert sorted(titles) == ["youtube.com: removed on national", "youtube.com: removed on nsdi-a"]
    with Store.open_readonly(recorded.db) as store:
        removed = [r["event_id"] for r in store.changelog() if r["type"] == "removed"]
    assert sorted(e.findtext(ATOM + "id") for e in entries) == sorted(
        f"urn:uuid:{i}" for i in removed
    )
    _, again, _ = await s.get("/feed.atom")
    assert again == body  # the same feed id, entries and dates however often it is polled
    _, baselines, _ = await s.get("/feed.atom?type=baseline&lang=ru")
    doc = validate(baselines.encode())
    assert len(doc.findall(ATOM + "entry")) == 6 and "первый вердикт" in baselines
    assert doc.findtext(ATOM + "id") != feed.findtext(ATOM + "id")
    status, body, _ = await s.get("/feed.atom?type=nonsense")
    assert status == 400


async def test_change_log_filters_and_downloads(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    _, html, _ = await s.get("/changes?type=removed&resolver=nsdi-a")
    assert re.findall(r'data-type="(\w+)"', html) == ["removed"]
    assert 'href="/api/transitions.csv?resolver=nsdi-a&amp;type=removed"' in html
    _, html, _ = await s.get("/changes?type=removed,baseline")
    assert sorted(set(re.findall(r'data-type="(\w+)"', html))) == ["baseline", "removed"]
    status, html, _ = await s.get("/changes?since=yesterday")
    assert status == 400 and "since:" in html and "<html" in html
    # The JSON download is what `export --format json` writes for the same selection.
    _, body, headers = await s.get("/api/transitions.json?type=removed")
    assert "attachment" in headers["Content-Disposition"]
    code, out, _ = await run_cli("export", "--db", str(recorded.db), "--format", "json",
                                 "--type", "removed")  # fmt: skip
    assert code == 0 and json.loads(body) == json.loads(out) and len(json.loads(out)) == 2


async def test_resolvers_page(recorded: Any, site: Any) -> None:
    s = await site(recorded.db)
    status, html, _ = await s.get("/resolvers")
    assert status == 200
    assert re.findall(r'<tr data-resolver="([^"]+)">', html) == ["nsdi-a", "ref"]
    assert html.count("<svg") == 4 and 'data-name="nsdi-a"' in html
    assert ">100%<" in html


async def test_serve_command_publishes_and_follows(recorded: Any) -> None:
    """`serve --db` as a process: pages and health from the file, a new round picked up
    without a restart, SIGTERM stops it cleanly; bad arguments exit 2 naming them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nsdi_tracker", "serve", "--db", str(recorded.db),
        "--listen", "127.0.0.1:0", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    base = re.search(r"on (http://\S+)/ ", line)
    assert base, line
    async with aiohttp.ClientSession() as session:

        async def status() -> dict[str, Any]:
            async with session.get(base.group(1) + "/api/status") as r:
                return dict(await r.json())

        assert (await status())["last_round"]["id"] == 4
        async with session.get(base.group(1) + "/") as r:
            assert "Last round #4: ok" in await r.text()
        async with session.get(base.group(1) + "/healthz") as r:
            assert r.status == 200
        async with session.get(base.group(1) + "/metrics") as r:
            assert r.status == 404  # nothing measures here
        with Store.open(recorded.db) as store:
            await recorded.round(store)
        deadline = time.monotonic() + 10
        while (await status())["last_round"]["id"] != 5:
            assert time.monotonic() < deadline, "the new round never showed"
            await asyncio.sleep(0.3)
        async with session.get(base.group(1) + "/") as r:  # the page's kept reads too
            assert "Last round #5: ok" in await r.text()
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    code, _, err = await run_cli("serve", "--db", str(recorded.db), "--base-path", "nsdi")
    assert code == 2 and "--base-path: 'nsdi' must be a path" in err
    code, _, err = await run_cli("serve", "--db", str(recorded.db), "--listen", "localhost")
    assert code == 2 and "--listen:" in err
    code, _, err = await run_cli("serve", "--db", str(recorded.tmp_path / "none.db"))
    assert code == 2 and "no database here yet" in err
