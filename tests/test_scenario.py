"""February 2026, end to end: the real CLI in a subprocess against simulated resolvers."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from conftest import run_cli, write_config

from nsdi_tracker.sim import Zone, answer, nxdomain, silent

YT = ("142.250.74.46", "2a00:1450:4010:c0e::5d")
WA = ("157.240.205.60",)


def national_zone() -> Zone:
    z = Zone()
    z.set("youtube.com", nxdomain())
    z.set("whatsapp.com", nxdomain())
    z.set("cdn.example.net", answer("95.100.1.10"))  # a CDN's Moscow edge
    z.set("sinkholed.org", answer("10.10.10.10"))
    z.set("meduza.io", answer("104.18.30.1"))
    return z


def reference_zone(*, forged: bool = False) -> Zone:
    z = Zone()
    # Over plain UDP a DPI box answers for the reference: NXDOMAIN, AA, no authority.
    z.set("youtube.com", nxdomain(soa=False, aa=True) if forged else answer(*YT))
    z.set("whatsapp.com", answer(*WA))
    z.set("cdn.example.net", answer("23.50.1.10"))
    z.set("sinkholed.org", answer("151.101.1.7"))
    z.set("meduza.io", answer("104.18.30.1"))
    return z


DOMAINS = ["youtube.com", "whatsapp.com", "cdn.example.net", "sinkholed.org", "meduza.io"]


def by_domain(doc: dict[str, Any]) -> dict[str, Any]:
    return {d["domain"]: d for d in doc["domains"]}


async def test_february_2026(
    sim: Any, tmp_path: Path, server_ssl: ssl.SSLContext, ca_file: Path
) -> None:
    """Removed, differs (CDN), tampered, unreachable and a forged reference reply, via --json."""
    nat = national_zone()
    nsdi_a = await sim(nat)
    nsdi_b = await sim(nat)
    dead = await sim(Zone(outage=silent()))
    ref_udp = await sim(reference_zone(forged=True))
    ref_doh = await sim(reference_zone(), doh=server_ssl)
    cfg = write_config(
        tmp_path,
        [
            {"name": "nsdi-a", "role": "national", "address": nsdi_a.address},
            {"name": "nsdi-b", "role": "national", "address": nsdi_b.address, "transport": "tcp"},
            {"name": "nsdi-dead", "role": "national", "address": dead.address,
             "timeout": 0.2, "retries": 1},
            {"name": "google", "role": "reference", "address": ref_udp.address},
            {"name": "google-doh", "role": "reference", "address": ref_doh.url,
             "transport": "doh", "ca_file": str(ca_file)},
        ],
        domains=DOMAINS,
    )  # fmt: skip
    code, out, err = await run_cli("check", "--config", str(cfg), "--json")
    assert code == 0, err
    doc = json.loads(out)
    d = by_domain(doc)

    assert d["youtube.com"]["national"] == "removed"
    assert d["whatsapp.com"]["national"] == "removed"
    yt_a = d["youtube.com"]["resolvers"]["nsdi-a"]
    assert yt_a["verdict"] == "removed"
    assert yt_a["nxdomain"] == "ordinary"
    assert yt_a["A"]["authority"]["soa"] is True
    assert yt_a["A"]["reasked"] is True  # asked twice before it counted
    assert d["youtube.com"]["resolvers"]["nsdi-dead"]["verdict"] == "unreachable"

    # The forged reply on the UDP reference is labelled and left out of the consensus.
    ref = d["youtube.com"]["reference"]
    assert ref["resolvers"]["google"]["A"]["nxdomain"] == "forged"
    assert ref["resolvers"]["google"]["A"]["flags"] == ["aa", "ra"]
    assert ref["consensus"] == "exists"
    assert "google" in ref["ignored"]
    assert set(ref["addresses"]) == set(YT)

    assert d["cdn.example.net"]["national"] == "differs"
    assert d["sinkholed.org"]["national"] == "tampered"
    assert d["meduza.io"]["national"] == "present"
    assert all(
        r["verdict"] == "unreachable"
        for x in d.values()
        for n, r in x["resolvers"].items()
        if n == "nsdi-dead"
    )
    dead_info = next(r for r in doc["resolvers"] if r["name"] == "nsdi-dead")
    assert dead_info["controls_passed"] is False

    # --fail-on turns a removal into exit 1; the same round with only present names exits 0.
    code, _, _ = await run_cli("check", "--config", str(cfg), "--fail-on", "removed", "youtube.com")
    assert code == 1
    code, out, _ = await run_cli("check", "--config", str(cfg), "--fail-on", "removed", "meduza.io")
    assert code == 0
    assert "meduza.io" in out and "present" in out


async def test_dead_national_is_never_removed(sim: Any, tmp_path: Path) -> None:
    """With every national resolver down the headline is unreachable, never removed."""
    dead = await sim(Zone(outage=silent()))
    ref = await sim(reference_zone())
    cfg = write_config(
        tmp_path,
        [
            {"name": "nsdi-a", "role": "national", "address": dead.address,
             "timeout": 0.2, "retries": 0},
            {"name": "ref", "role": "reference", "address": ref.address},
        ],
        domains=DOMAINS,
    )  # fmt: skip
    code, out, err = await run_cli("check", "--config", str(cfg), "--json")
    assert code == 0, err
    assert {d["national"] for d in json.loads(out)["domains"]} == {"unreachable"}


async def test_all_references_dead_gives_unknown(sim: Any, tmp_path: Path) -> None:
    """Without a working reference (our connectivity gone) nothing is judged removed."""
    nat = await sim(national_zone())
    dead_ref = await sim(Zone(outage=silent()))
    cfg = write_config(
        tmp_path,
        [
            {"name": "nsdi-a", "role": "national", "address": nat.address},
            {"name": "ref", "role": "reference", "address": dead_ref.address,
             "timeout": 0.2, "retries": 0},
        ],
        domains=DOMAINS,
    )  # fmt: skip
    code, out, err = await run_cli("check", "--config", str(cfg), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["connectivity"] is False
    assert {d["national"] for d in doc["domains"]} == {"unknown"}
