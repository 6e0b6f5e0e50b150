"""Watchlists in three formats, normalised and merged; invalid names named with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsdi_tracker.core.errors import InvalidName, WatchlistError
from nsdi_tracker.core.names import normalize
from nsdi_tracker.settings.config import shipped_dir
from nsdi_tracker.settings.watchlist import (
    Entry,
    from_names,
    load_watchlist,
    load_watchlists,
    merge,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("YouTube.COM", "youtube.com"),
        ("www.youtube.com.", "www.youtube.com"),
        ("  bbc.co.uk  ", "bbc.co.uk"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("XN--E1AFMKFD.XN--P1AI", "xn--e1afmkfd.xn--p1ai"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("_dmarc.example.com", "_dmarc.example.com"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "a b.com", "1.2.3.4", "::1", "*.example.com", "a..b", "-a.com", "a-.com",
     "x" * 64 + ".com", "ex\\065.com", "😀.com", ".com", "123"],
)  # fmt: skip
def test_invalid_names(raw: str) -> None:
    with pytest.raises(InvalidName):
        normalize(raw)


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,10}){1,3}", fullmatch=True))
def test_normalize_is_idempotent(name: str) -> None:
    """Normalising a normalised name changes nothing."""
    once = normalize(name)
    assert normalize(once) == once == name


def test_text_format(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# censored\nYouTube.com\n\nbbc.com  # news\nyoutube.com.\n")
    assert [e.domain for e in load_watchlist(path)] == ["youtube.com", "bbc.com", "youtube.com"]
    assert [e.domain for e in load_watchlists([path])] == ["youtube.com", "bbc.com"]


def test_csv_tranco_format(tmp_path: Path) -> None:
    """`rank,domain` rows, an optional header, and a one-column form."""
    path = tmp_path / "top.csv"
    path.write_text("rank,domain\n1,google.com\n2,YouTube.com\n3,пример.рф\n")
    assert [e.domain for e in load_watchlist(path)] == [
        "google.com", "youtube.com", "xn--e1afmkfd.xn--p1ai",
    ]  # fmt: skip
    single = tmp_path / "one.csv"
    single.write_text("domain\nbbc.com\ndw.com\n")
    assert [e.domain for e in load_watchlist(single)] == ["bbc.com", "dw.com"]


def test_toml_format_and_merge(tmp_path: Path) -> None:
    """Entries keep label, category, note and source; duplicates fill in missing fields."""
    path = tmp_path / "w.toml"
    path.write_text(
        '[[entry]]\ndomain = "YouTube.com"\nlabel = "YouTube"\n\n'
        '[[entry]]\ndomain = "youtube.com."\ncategory = "video"\nnote = "n"\nsource = "s"\n'
    )
    assert load_watchlists([path]) == [
        Entry("youtube.com", label="YouTube", category="video", note="n", source="s")
    ]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("a.txt", "bbc.com\n\nbad name.com\n", ":3:"),
        ("a.csv", "1,bbc.com\n2,*.dw.com\n", ":2:"),
        ("a.toml", '[[entry]]\ndomain = "ok.com"\n\n[[entry]]\ndomain = "bad..com"\n', ":5:"),
    ],
)
def test_invalid_name_names_file_and_line(
    tmp_path: Path, name: str, content: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path)
    assert str(info.value).startswith(f"{path}{where} invalid domain")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('[[entry]]\nlabel = "x"\n', "'domain' is missing"),
        ('[[entry]]\ndomain = "a.com"\ncolour = "x"\n', "unknown key 'colour'"),
        ('domains = ["a.com"]\n', "unknown top-level key"),
        ("[[entry]\n", "invalid TOML"),
    ],
)
def test_toml_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(content)
    with pytest.raises(WatchlistError, match=problem):
        load_watchlist(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError, match="cannot read"):
        load_watchlist(tmp_path / "nope.txt")


def test_command_line_names() -> None:
    assert [e.domain for e in from_names(["BBC.com", "bbc.com", "dw.com"])] == ["bbc.com", "dw.com"]
    with pytest.raises(WatchlistError, match="argument 2"):
        from_names(["bbc.com", "not a name"])


def test_merge_keeps_first_order() -> None:
    assert [e.domain for e in merge([Entry("b.com"), Entry("a.com"), Entry("b.com")])] == [
        "b.com",
        "a.com",
    ]


def test_watchlist_keeps_fields_only_where_given() -> None:
    """Merged in first-seen order, later duplicates filling in what the first lacked; read
    back by index, slice and iteration as the same entries."""
    w = merge([
        Entry("b.com"), Entry("a.com", label="A"), Entry("b.com", category="news", label="B"),
        Entry("c.com"), Entry("a.com", label="other", note="n"),
    ])  # fmt: skip
    expected = [
        Entry("b.com", label="B", category="news"),
        Entry("a.com", label="A", note="n"),
        Entry("c.com"),
    ]
    assert list(w) == expected and w == expected and len(w) == 3
    assert w[-1] == Entry("c.com") and w[0:2] == expected[:2] and w[1].domain == "a.com"
    with pytest.raises(IndexError):
        w[3]


def test_shipped_watchlists() -> None:
    """The February 2026 list carries Na Svyazi's names; the controls resolve everywhere."""
    feb = {e.domain: e for e in load_watchlist(shipped_dir() / "watchlists/nsdi-2026-02.toml")}
    expected = {
        "youtube.com", "www.youtube.com", "whatsapp.com", "web.whatsapp.com", "facebook.com",
        "messenger.com", "instagram.com", "windscribe.com", "apkmirror.com", "torproject.org",
        "bbc.com", "bbc.co.uk", "currenttime.tv", "dw.com", "rferl.org", "themoscowtimes.com",
        "telegram.org", "discord.com", "signal.org", "meduza.io", "tvrain.tv",
    }  # fmt: skip
    assert set(feb) == expected
    assert all(e.label and e.category for e in feb.values())
    controls = {e.domain for e in load_watchlist(shipped_dir() / "watchlists/controls.toml")}
    assert {"ya.ru", "gosuslugi.ru", "vk.com", "wikipedia.org"} <= controls
