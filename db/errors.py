"""Errors the store raises (plain exceptions, so callers need not import SQLAlchemy)."""


class RunNotFound(LookupError):
    """No run has this id."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        super().__init__(f"run {run_id} not found")


class LostOwnership(RuntimeError):
    """This worker no longer owns the run (it was requeued, cancelled or finished elsewhere)."""


class RunStateError(ValueError):
    """The run is in a status that does not allow the operation."""
