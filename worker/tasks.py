"""The Celery task "rnnlab.run": thin; it only hands the run id to worker.runner.

A transient database error that escapes the runner (``claim_run`` on a locked SQLite file or during
a Postgres restart, before the runner records anything) retries the task with exponential backoff
(1 s, 2 s, 4 s, … capped at 2 min, jittered; at most DB_MAX_RETRIES times, about 20 minutes).
Without it the task would fail at once and its message be acked (acks_late acks failures too). If
the retries run out, the run is left ``queued`` with no message; the workers' lost-message check
(worker.orphans) re-sends it once the database answers again. A retry of a run that was claimed
after all is harmless: the claim is atomic.

A run the runner handed back because the database stayed unusable mid-run (worker.runner: each
write retries for DB_RETRY_S first) is sent again as a retry of this task, a few seconds later. (A run
handed back by a shutdown is sent again by the worker's main process instead: worker.app.)

A gpu run handed back because this worker's GPU is unusable (worker.runner.GPU_LOST) is not retried
here: the worker's main process stops consuming the gpu queue first and then sends it again
(worker.app.stop_taking), so another GPU worker takes it.
"""

from __future__ import annotations

from worker.app import app, stop_taking, worker_settings
from worker.heartbeat import worker_stopping
from worker.runner import DB_TRANSIENT, execute
from worker.slots import before_run

DB_MAX_RETRIES = 15
HANDED_BACK_RETRY_S = 5


@app.task(name="rnnlab.run", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
          autoretry_for=DB_TRANSIENT, retry_backoff=True, retry_backoff_max=120, retry_jitter=True,
          max_retries=DB_MAX_RETRIES)
def run(self, run_id: int) -> str | None:
    """Train run ``run_id`` (claim → engine with recording callbacks → finish)."""
    s = worker_settings()
    before_run(int(run_id))   # this slot's CUDA memory cap (once per process); logs its pid and torch threads
    hostname = self.request.hostname
    status = execute(int(run_id), hostname, heartbeat_s=s.heartbeat_seconds, lost_after_s=s.lost_after_seconds,
                     on_gpu_lost=lambda queue, problem, rid: stop_taking(hostname, queue, problem, rid))
    if status == "requeued" and not worker_stopping():   # handed back on a database outage: send it again
        raise self.retry(countdown=HANDED_BACK_RETRY_S)
    return status
