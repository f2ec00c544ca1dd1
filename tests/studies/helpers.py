"""Plant a study's runs in a real database through db.store, with chosen results per run."""

from __future__ import annotations

from collections.abc import Callable

from db import store
from rnnlab.spec import JobSpec
from studies.core import Study
from tests.synthetic import epoch_record, run_info


def plant(study: Study, url: str, values: Callable[[JobSpec], dict | None], scale: str = "cpu") -> list[int]:
    """Create the study's runs (tagged as the study tags them) and record two epochs each.

    ``values(spec)`` gives what to store for that run: ``status`` (succeeded, diverged, failed, or
    queued/running to leave it unfinished), ``val_loss`` (and ``val_metric``) of the last epoch, and layer 0's ``rho0``,
    ``log_ratio0``, ``horizon0`` (epoch 0) and ``rho_last``, ``log_ratio_last``, ``horizon_last`` (epoch 1);
    ``layers0``: for a stack, one dict per layer of the fields to store at epoch 0 (e.g. log_ratio, horizon).
    """
    specs = study.specs(scale)
    ids = store.create_runs(specs, tags=[study.tag(scale)], url=url)
    for run_id, spec in zip(ids, specs):
        v = values(spec) or {}
        status = v.get("status", "succeeded")
        if status == "queued":
            continue
        claimed = store.claim_run(run_id, "test-worker", url=url)
        a = claimed["attempt"]
        info = run_info(spec.cell, spec.task.seq_len, spec.num_layers)
        if "baseline" in v:
            info.baseline_loss = v["baseline"]
        store.record_info(run_id, info, attempt=a, url=url)
        losses = v.get("val_losses") or [0.5, v.get("val_loss", 0.5)]
        for epoch, loss in enumerate(losses):
            last = epoch == len(losses) - 1
            rec = epoch_record(epoch, cell=spec.cell, seq_len=spec.task.seq_len, num_layers=spec.num_layers,
                               seed=run_id)
            layer = rec.layers[0]
            for f in ("rho", "log_ratio", "horizon"):
                key = f + ("0" if epoch == 0 else "_last")
                if key in v and (epoch == 0 or last):
                    setattr(layer, f, v[key])
            if epoch == 0:
                for stat, fields in zip(rec.layers, v.get("layers0") or []):
                    for f, x in fields.items():
                        setattr(stat, f, x)
            rec.val_loss = loss
            if last and "val_metric" in v:
                rec.val_metric = v["val_metric"]
            rec.nonfinite_steps = (v.get("nonfinite") or [0] * len(losses))[epoch]
            store.record_epoch(run_id, rec, attempt=a, url=url)
        if status != "running":
            store.finish_run(run_id, status, "planted", attempt=a, url=url)
    return ids
