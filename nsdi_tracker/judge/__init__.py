"""The rules: what a reply means (classify) and when a changed verdict becomes a transition
(confirm). Pure functions over the core vocabulary, no I/O.
"""
