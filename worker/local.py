"""Train runs that already exist in the results database here, one after another, through the same
Recorder as a Celery worker and `rnnlab train` (claim, info, epochs, diagnosis, checkpoints, final status
and message). Used by `rnnlab study run NAME --local`; imports the engine (torch) when called."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence

from db import store
from rnnlab.spec import JobSpec
from worker.recorder import Recorder


def train_here(ids: Sequence[int], specs: Sequence[JobSpec], *, url: str | None = None,
               on_run: Callable[[int, str, float], None] | None = None) -> dict[int, str]:
    """Claim and train each run; returns run id → final status (runs another worker holds are left to
    it and absent). ``on_run(run_id, status, seconds)`` after each run."""
    name = f"local-{os.getpid()}@{socket.gethostname()}"
    out: dict[int, str] = {}
    for run_id, spec in zip(ids, specs, strict=True):
        claimed = store.claim_run(run_id, name, url=url)
        if claimed is None:
            continue
        t0 = time.perf_counter()
        rec = Recorder(run_id, claimed["attempt"], url=url)
        try:
            status, message = rec.train(spec)
        except store.LostOwnership:
            continue
        except Exception as e:  # noqa: BLE001 - the run fails with the worker's wording; the next one goes on
            status, message = rec.failed(e)
        rec.finish(status, message)
        out[run_id] = status
        if on_run is not None:
            on_run(run_id, status, time.perf_counter() - t0)
    return out
