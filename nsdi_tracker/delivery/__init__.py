"""Getting persisted events out: the outbox (at least once, with backoff, one task per sink,
never blocking a round) and the sinks it sends through (a JSON-lines log, a signed webhook,
Apprise).
"""
