"""The PostgreSQL backend of a fleet's collector: its schema and migrations, and what the
collector writes (probes' rounds, their per-domain verdicts, confirmed transitions) and reads."""
