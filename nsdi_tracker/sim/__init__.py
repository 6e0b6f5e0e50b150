"""Simulated resolvers on loopback: scriptable per name, for the tests and the offline demo."""

from nsdi_tracker.sim.doh_server import SimDoH
from nsdi_tracker.sim.script import Noise, Script, Zone, answer, nodata, nxdomain, rcode, silent
from nsdi_tracker.sim.server import SimResolver

__all__ = [
    "Noise", "Script", "SimDoH", "SimResolver", "Zone",
    "answer", "nodata", "nxdomain", "rcode", "silent",
]  # fmt: skip
