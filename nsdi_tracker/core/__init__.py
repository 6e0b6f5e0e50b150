"""The ground floor: the vocabulary (verdicts, outcomes, roles, round statuses, the observation
of one query), the clock, name normalisation, the project's errors and credential redaction.

Pure, and imports nothing else of the package.
"""
