"""nsdi-tracker: tells, with evidence, when a domain leaves or returns to a national DNS system."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nsdi-tracker")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
