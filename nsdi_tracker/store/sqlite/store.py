"""The SQLite store: one class made of its parts, one module each.

WAL mode, foreign keys on (a round's commit, whose rows take every key from a join in the
same transaction, skips the checks: rounds.Rounds._committing), synchronous FULL, and each
round written in one transaction, so a crash or a kill leaves either the whole round or none
of it. Timestamps are ISO-8601 UTC text and address lists JSON arrays, so `datasette` or
`sqlite-utils` browse the file as it is.
"""

from __future__ import annotations

from nsdi_tracker.store.protocols import DeliveryQueue, ReadModel, RoundStore
from nsdi_tracker.store.sqlite.browse import Browse
from nsdi_tracker.store.sqlite.changelog import Changelog
from nsdi_tracker.store.sqlite.files import Files
from nsdi_tracker.store.sqlite.queue import Queue
from nsdi_tracker.store.sqlite.reads import Reads
from nsdi_tracker.store.sqlite.rounds import Rounds


class Store(Files, Rounds, Queue, Reads, Changelog, Browse):
    """One open database. Not thread-safe: one owner, the event loop's thread.

    Files opens, guards and copies the file; Rounds writes rounds (store.protocols.RoundStore);
    Queue is the outbox's queue (DeliveryQueue); Reads, Changelog and Browse (the web page's)
    are the read models (ReadModel). Every SQL statement of the project is in this package.
    """


def _keeps_the_protocols(store: Store) -> tuple[RoundStore, DeliveryQueue, ReadModel]:
    """Never called: mypy checks here that Store implements the three store protocols."""
    return store, store, store
