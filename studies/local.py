"""Run a study's runs in this process, one after another, writing to the results database exactly as a
worker does (claim, info, epochs, diagnosis, finish). For calibration and for machines without
workers; ``studies.submit`` sends them to the workers instead. Imports the engine (torch) when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from studies.core import Study


def run_local(study: Study, scale: str, *, url: str | None = None, owner: str | None = None,
              on_run: Callable[[int, str, float], None] | None = None) -> list[int]:
    """Create the study's runs (tagged ``study.tag(scale)``) and train each here; returns the run ids.
    ``on_run(run_id, outcome, seconds)`` after each run."""
    import models
    from db import store

    specs = study.specs(scale)
    ids = store.create_runs(specs, owner=owner, tags=[study.tag(scale)], sweep=study.sweep(scale), url=url)
    for run_id, spec in zip(ids, specs):
        claimed = store.claim_run(run_id, "local", url=url)
        if claimed is None:
            continue
        attempt = claimed["attempt"]
        facts: dict = {}
        t0 = time.perf_counter()

        def on_info(info, run_id=run_id, attempt=attempt, facts=facts):
            facts["info"] = info
            store.record_info(run_id, info, attempt=attempt, url=url)

        def on_epoch(rec, run_id=run_id, attempt=attempt, facts=facts):
            store.record_epoch(run_id, rec, attempt=attempt, url=url)
            if rec.epoch == 0:
                facts["initial"] = rec
            if rec.probed:
                store.record_diagnosis(run_id, models.diagnose(rec, facts["info"], facts.get("initial")),
                                       attempt=attempt, url=url)

        try:
            res = models.train(spec, on_info=on_info, on_epoch=on_epoch)
            store.finish_run(run_id, res.outcome, res.message, attempt=attempt, url=url)
            outcome = res.outcome
        except Exception as e:  # noqa: BLE001 - the run fails, the study goes on
            store.finish_run(run_id, "failed", f"{type(e).__name__}: {e}", attempt=attempt, url=url)
            outcome = "failed"
        if on_run is not None:
            on_run(run_id, outcome, time.perf_counter() - t0)
    return ids
