"""Checks an Atom document against what RFC 4287 requires of a feed and its entries (the MUSTs
of sections 4.1.1, 4.1.2, 4.2.6, 4.2.7 and 3.3), so a test can say a feed is valid Atom."""

from __future__ import annotations

import re
from collections import Counter

from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
# RFC 3339 date-time, as section 3.3 requires of every date construct
DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")  # absolute: a scheme, then no spaces


def _one(parent: etree._Element, name: str, where: str) -> etree._Element:
    found = parent.findall(ATOM + name)
    assert len(found) == 1, f"{where}: {len(found)} atom:{name}, RFC 4287 wants exactly one"
    return found[0]


def _date(element: etree._Element, where: str) -> None:
    assert DATE.fullmatch(element.text or ""), f"{where}: {element.text!r} is not RFC 3339"


def _links(parent: etree._Element, where: str) -> list[etree._Element]:
    links = parent.findall(ATOM + "link")
    for link in links:
        assert link.get("href"), f"{where}: atom:link without href"
    alternates = Counter(
        (link.get("type"), link.get("hreflang"))
        for link in links
        if link.get("rel", "alternate") == "alternate"
    )
    assert all(n == 1 for n in alternates.values()), f"{where}: repeated alternate links"
    return links


def validate(document: bytes) -> etree._Element:
    """Parse and check; returns the feed element. AssertionError names what is wrong."""
    root = etree.fromstring(document)
    assert root.tag == ATOM + "feed", f"root is {root.tag}, not atom:feed"
    assert IRI.fullmatch(_one(root, "id", "feed").text or ""), "feed id is not an IRI"
    _one(root, "title", "feed")
    _date(_one(root, "updated", "feed"), "feed updated")
    links = _links(root, "feed")
    assert any(link.get("rel") == "self" for link in links), "feed: no rel=self link (SHOULD)"
    feed_author = root.findall(ATOM + "author")
    ids = []
    for i, entry in enumerate(root.findall(ATOM + "entry")):
        where = f"entry {i}"
        entry_id = _one(entry, "id", where).text or ""
        assert IRI.fullmatch(entry_id), f"{where}: id {entry_id!r} is not an IRI"
        ids.append(entry_id)
        _one(entry, "title", where)
        _date(_one(entry, "updated", where), f"{where} updated")
        for published in entry.findall(ATOM + "published"):
            _date(published, f"{where} published")
        has_alternate = any(
            link.get("rel", "alternate") == "alternate" for link in _links(entry, where)
        )
        assert entry.findall(ATOM + "content") or has_alternate, f"{where}: no content, no link"
        assert feed_author or entry.findall(ATOM + "author"), f"{where}: no author anywhere"
        for author in entry.findall(ATOM + "author") + feed_author:
            _one(author, "name", f"{where} author")
    assert len(ids) == len(set(ids)), "two entries share an id"
    return root
