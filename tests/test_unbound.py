"""A real Unbound (from Debian) as the national resolver, with a policy NXDOMAIN for one name."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_config

from nsdi_tracker.core.model import Outcome, Role, Transport
from nsdi_tracker.dns.probe import ResolverClient
from nsdi_tracker.settings.resolvers import ResolverSpec
from nsdi_tracker.sim import Zone, answer

pytestmark = pytest.mark.unbound

# A recursive Unbound on loopback that forwards everything to a simulated upstream (the
# `forward-zone` after it); each test adds its own lines.
UNBOUND_SERVER = """\
server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: no
"""
UNBOUND_CONF = (
    UNBOUND_SERVER
    + """\
    local-zone: "youtube.com." always_nxdomain
    local-zone: "whatsapp.com." always_nxdomain
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{upstream}
"""
)


def unbound_binary() -> str:
    found = shutil.which("unbound") or shutil.which("unbound", path="/usr/sbin:/usr/local/sbin")
    assert found, "Unbound is required: `make test` installs it (tests/ensure-tools.sh)"
    return found


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


@pytest.fixture
async def unbound(sim: Any, tmp_path: Path) -> AsyncIterator[tuple[str, Zone]]:
    """Unbound on loopback forwarding everything to a simulated upstream on loopback."""
    upstream_zone = Zone()
    upstream_zone.set("youtube.com", answer("142.250.74.46"))
    upstream_zone.set("whatsapp.com", answer("157.240.205.60"))
    upstream_zone.set("meduza.io", answer("104.18.30.1"))
    upstream = await sim(upstream_zone)
    port = free_port()
    conf = tmp_path / "unbound.conf"
    conf.write_text(UNBOUND_CONF.format(port=port, dir=tmp_path, upstream=upstream.port))
    proc = await asyncio.create_subprocess_exec(
        unbound_binary(), "-d", "-c", str(conf),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    spec = ResolverSpec(
        name="probe", role=Role.NATIONAL, transport=Transport.UDP, address=address,
        host="127.0.0.1", port=port, timeout=0.5, retries=0,
    )  # fmt: skip
    try:
        for _ in range(50):  # wait until it answers
            async with ResolverClient(spec) as client:
                usable = (await client.query("meduza.io", "A")).outcome.usable
            if usable:
                break
            assert proc.returncode is None, "unbound exited"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("unbound did not start answering")
        yield address, upstream_zone
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 10)


async def test_unbound_always_nxdomain_is_removed(
    unbound: tuple[str, Zone], sim: Any, tmp_path: Path
) -> None:
    """Unbound's local-zone always_nxdomain, as a national resolver, reads as `removed`."""
    address, upstream_zone = unbound
    # The reference sees the upstream's real answers (its own zone, so the logs stay apart).
    reference = await sim(Zone(scripts=dict(upstream_zone.scripts)))
    cfg = write_config(
        tmp_path,
        [
            {"name": "nsdi-unbound", "role": "national", "address": address},
            {"name": "ref", "role": "reference", "address": reference.address},
        ],
        domains=["youtube.com", "whatsapp.com", "meduza.io", "no-such-name.example"],
    )
    code, out, err = await run_cli("check", "--config", str(cfg), "--json")
    assert code == 0, err
    doc = {d["domain"]: d for d in json.loads(out)["domains"]}
    assert doc["youtube.com"]["national"] == "removed"
    assert doc["whatsapp.com"]["national"] == "removed"
    assert doc["meduza.io"]["national"] == "present"
    assert doc["no-such-name.example"]["national"] == "absent"
    yt = doc["youtube.com"]["resolvers"]["nsdi-unbound"]
    assert yt["A"]["outcome"] == Outcome.NXDOMAIN
    assert yt["A"]["rcode"] == "NXDOMAIN"
    assert "ra" in yt["A"]["flags"]
    # Unbound synthesises its policy NXDOMAIN with AA set and no SOA: the same signature as the
    # DPI boxes' injected replies. On a national resolver that marks a policy answer, not an
    # upstream's honest NXDOMAIN (which carries the parent zone's SOA).
    assert yt["nxdomain"] == "forged"
    assert "aa" in yt["A"]["flags"]
    assert yt["A"]["authority"]["soa"] is False
    # The policy answer never reached the upstream: Unbound answered it itself.
    assert not upstream_zone.queries("youtube.com")
