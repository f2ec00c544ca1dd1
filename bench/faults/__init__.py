"""The fault suite: real workers, own Redis and PostgreSQL, injected faults, counted runs.

``python -m bench.faults --all`` writes docs/reliability.md; tests/faults runs a short subset.
"""
