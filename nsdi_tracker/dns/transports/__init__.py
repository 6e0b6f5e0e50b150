"""The transports: one module each (udp with its socket pool, stream for TCP and DoT, doh), each
registering a `Kind` here.

`TRANSPORTS` is the registry the resolver client asks through. Adding a transport (DoQ, say) is
its name in `core.model.Transport` with its facts (default port, URL or host, TLS), a module
here with a `KIND`, and a line below; the architecture test fails until every Transport has
one.
"""

from __future__ import annotations

from collections.abc import Mapping

from nsdi_tracker.core.model import Transport
from nsdi_tracker.dns.transports import doh, stream, udp
from nsdi_tracker.dns.transports.base import Ask, Exchange, Kind

__all__ = ["TRANSPORTS", "Ask", "Exchange", "Kind"]

TRANSPORTS: Mapping[Transport, Kind] = {
    k.transport: k for k in (udp.KIND, stream.TCP, stream.DOT, doh.KIND)
}
