"""The Celery task "rnnlab.run": thin; it only hands the run id to worker.runner."""

from __future__ import annotations

from worker.app import app, worker_settings
from worker.runner import execute


@app.task(name="rnnlab.run", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run(self, run_id: int) -> str | None:
    """Train run ``run_id`` (claim → engine with recording callbacks → finish)."""
    s = worker_settings()
    return execute(int(run_id), self.request.hostname, heartbeat_s=s.heartbeat_seconds,
                   lost_after_s=s.lost_after_seconds)
