"""Keeping what was measured: the records a round hands over, the SQLite database (schema,
migrations, round writes, the delivery queue, the read models, backup and the writer's lock),
and the thread that runs blocking database calls off the event loop.
"""
