"""One round, end to end: the sweep of every name on every resolver (measure), what it changes
(ledger: confirmed transitions and the rows to store), the event JSON sinks receive (events),
the raw observation archive (raw), and one persisted round (tracker).
"""
