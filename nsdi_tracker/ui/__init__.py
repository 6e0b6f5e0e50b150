"""What people and scripts see: a round as a table or JSON (report), the database as `status`
and `history` (views), the live dashboard, the change log as CSV/JSON (export), and the log
format (logs). Pure renderers over rows and records; the reading is done by the caller.
"""
