"""A simulated DNS-over-HTTPS resolver (RFC 8484) answering from the same Zone scripts."""

from __future__ import annotations

import asyncio
import base64
import ssl
from types import TracebackType

import dns.exception
import dns.message
import dns.rdatatype
from aiohttp import web

from nsdi_tracker.sim.script import Noise, Query, Zone, build_reply
from nsdi_tracker.sim.server import MALFORMED, noise_messages

DOH_TYPE = "application/dns-message"


class SimDoH:
    """An HTTPS server on loopback with POST and GET /dns-query; `url` is ready to configure."""

    def __init__(self, zone: Zone, ssl_context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        self.zone = zone
        self.ssl_context = ssl_context
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/dns-query"

    async def start(self) -> SimDoH:
        app = web.Application()
        app.router.add_route("POST", "/dns-query", self._handle)
        app.router.add_route("GET", "/dns-query", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SimDoH:
        return await self.start()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            wire = await request.read()
        else:
            encoded = request.query.get("dns", "")
            wire = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return web.Response(status=400, text="not a DNS message")
        q = query.question[0]
        qname = q.name.to_text(omit_final_dot=True).lower()
        qtype = dns.rdatatype.to_text(q.rdtype)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.zone.log.append(Query(qname, qtype, "doh", tuple(peer[:2]) if peer else ("", 0)))
        script = self.zone.script_for(qname, qtype)
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.silent:
            await asyncio.sleep(3600)  # the client's timeout ends it
        noise = noise_messages(query, script)
        if noise and noise[0][0] is Noise.MALFORMED:
            return web.Response(body=MALFORMED, content_type=DOH_TYPE)
        if noise and noise[0][0] in (Noise.WRONG_ID, Noise.WRONG_QUESTION):
            return web.Response(body=noise[0][1], content_type=DOH_TYPE)
        reply = build_reply(query, script, truncate=False)
        return web.Response(body=reply.to_wire(max_size=65535), content_type=DOH_TYPE)
