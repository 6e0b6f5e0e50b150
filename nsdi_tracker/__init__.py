"""nsdi-tracker: tells, with evidence, when a domain leaves or returns to a national DNS system."""

from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec

try:
    __version__ = version("nsdi-tracker")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def build() -> str:
    """Which build this is: the hot path compiled by mypyc (a wheel built where a C compiler
    was at hand; hatch_build.py), or pure Python (an editable install, or no compiler)."""
    spec = find_spec("nsdi_tracker.dns.fastwire")
    origin = spec.origin if spec is not None else None
    if origin is not None and origin.endswith(tuple(EXTENSION_SUFFIXES)):
        return "compiled with mypyc"
    return "pure Python"
