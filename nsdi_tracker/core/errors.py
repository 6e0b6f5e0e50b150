"""The project's own failures. DNS outcomes (timeouts, SERVFAIL...) are data, never these."""


class TrackerError(Exception):
    """Root of every error nsdi-tracker raises on purpose."""


class ConfigError(TrackerError):
    """A configuration file is unreadable or invalid; the message names file and key."""


class WatchlistError(TrackerError):
    """A watchlist is unreadable or holds an invalid entry; the message names file and line."""


class InvalidName(TrackerError):
    """A string is not a usable domain name."""


class StoreError(TrackerError):
    """The database is missing, unreadable, or from a newer version of the tracker."""


class WriterLost(StoreError):
    """Another process took the database's writer lock from under this one."""
