"""Simulated resolvers on loopback: scriptable per name, for the tests and the offline demo."""

from nsdi_tracker.sim.doh_server import SimDoH
from nsdi_tracker.sim.script import (
    CONTROL_ADDRESSES,
    Noise,
    Script,
    Zone,
    answer,
    answering,
    nodata,
    nxdomain,
    rcode,
    silent,
)
from nsdi_tracker.sim.server import SimResolver

__all__ = [
    "CONTROL_ADDRESSES", "Noise", "Script", "SimDoH", "SimResolver", "Zone",
    "answer", "answering", "nodata", "nxdomain", "rcode", "silent",
]  # fmt: skip
