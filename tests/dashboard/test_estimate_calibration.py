"""The New-experiment time estimate (dashboard/estimate.py): calibration that short study runs cannot
inflate, the held-out sizes the diagnostics model assumes, and wall time on the slots that serve the
runs' queue. Figures measured on a 2-core CPU (docs/dashboard.md, "Time estimate")."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import estimate
from rnnlab.spec import TASK_NAMES, parse_spec

# the default spec (rnn H128, adding T100, B64, 10 epochs × 50 steps) trained in 17.5 s (rnnlab train,
# started_at → finished_at), 26.5 s when the reviewer measured it on a busier machine
DEFAULT_MEASURED_S = (17.5, 26.5)


def _one_step_study(n: int = 9) -> pd.DataFrame:
    """timing_samples rows as `rnnlab study run activations --local` leaves them: 1 epoch × 1 step, H64,
    T50, B16; ≈ 0.02 s of training, 0.04-0.13 s of diagnostics over 2 diagnosed epochs."""
    spec = parse_spec({"task": {"name": "adding", "seq_len": 50}, "hidden_size": 64, "batch_size": 16,
                       "epochs": 1, "steps_per_epoch": 1}).to_dict()
    return pd.DataFrame([{"id": i + 1, "cell": "rnn", "hidden_size": 64, "seq_len": 50, "num_layers": 1,
                          "spec": spec, "batch_size": 16, "train_seconds": 0.02, "steps": 1,
                          "diag_seconds": 0.1, "diag_epochs": 2, "probed_epochs": 2, "run_seconds": 0.15,
                          "seconds": 0.12}   # the old column: training + diagnostics
                         for i in range(n)])


def test_a_one_step_study_history_does_not_inflate_a_50_step_spec():
    """After the activations study the default spec's estimate went from ≈ 19 s to ≈ 4 min (ratio ≈ 13
    of 1-step runs); runs with fewer than MIN_STEPS steps no longer calibrate."""
    spec = parse_spec({})
    scale, n = estimate.calibration(_one_step_study())
    est = estimate.seconds(spec, scale)
    assert est <= 2 * max(DEFAULT_MEASURED_S), est     # HEAD before this fix: ≈ 240 s
    lo, hi = estimate.span(est)
    for measured in DEFAULT_MEASURED_S:
        assert lo <= measured <= hi, (est, measured)
    assert n == 0


def test_calibration_pools_training_and_diagnostics_separately():
    spec = parse_spec({"epochs": 4, "steps_per_epoch": 30})
    d = spec.to_dict()
    train_m = estimate._model("rnn", 128, 100, 1, 64)
    held = estimate.HELDOUT["adding"]
    probed = estimate._diag_model("rnn", 128, 100, 1, held, 32, True)
    row = {"cell": "rnn", "hidden_size": 128, "seq_len": 100, "num_layers": 1, "spec": d, "batch_size": 64,
           "steps": 120, "diag_epochs": 5, "probed_epochs": 5}
    samples = pd.DataFrame([{**row, "id": 1, "train_seconds": 120 * 2 * train_m, "diag_seconds": 5 * 3 * probed,
                             "run_seconds": 120 * 2 * train_m + 5 * 3 * probed + 0.5},
                            {**row, "id": 2, "train_seconds": 120 * 2 * train_m, "diag_seconds": 5 * 3 * probed,
                             "run_seconds": None}])
    cal = estimate.calibrate(pd.concat([samples, _one_step_study()], ignore_index=True))
    assert (cal.train, cal.diag, cal.fixed_s, cal.n) == pytest.approx((2.0, 3.0, 0.5, 2))
    assert estimate.seconds(spec, cal) == pytest.approx(120 * 2 * train_m + 5 * 3 * probed + 0.5)


def test_the_heldout_table_matches_the_engine():
    from models.tasks import make_task

    for name in TASK_NAMES:
        task = make_task(parse_spec({"task": {"name": name}}).task, 0)
        assert sum(b.size for b in task.heldout()) == task.heldout_size == estimate.HELDOUT[name], name


def test_diagnosed_and_probed_epochs():
    spec = parse_spec({"epochs": 10, "probe": {"every": 3}})
    assert estimate._probed_epochs(spec, 10.0, 0.1) == len({0, 3, 6, 9, 10})
    budget = parse_spec({"epochs": 10, "probe": {"budget": 0.1}})
    assert estimate._probed_epochs(budget, 10.0, 0.25) == 4     # 0.1 · 10 s pays for 4 probes of 0.25 s
    assert estimate._probed_epochs(budget, 0.0, 0.25) == 2      # epochs 0 and N always


def _workers(rows) -> pd.DataFrame:
    return pd.DataFrame([{"name": n, "queues": q, "alive": a, **extra} for n, q, a, extra in rows])


def test_wall_time_counts_the_slots_of_the_live_workers_serving_the_queue():
    w = _workers([("c1", "cpu", True, {"slots": 3}), ("g1", "gpu", True, {"slots": 4}),
                  ("c2", "cpu", False, {"slots": 8}), ("both", "cpu,gpu", True, {"slots": None})])
    assert estimate.serving_slots(w, ["cpu"]) == 4            # 3 slots + a worker with no slot count
    assert estimate.serving_slots(w, ["gpu"]) == 5
    assert estimate.wall_by_queue([10.0] * 8, ["cpu"] * 8, w) == (20.0, 4)
    # no slots column stored: one per worker; a gpu-only worker does not run cpu runs
    plain = _workers([("c1", "cpu", True, {}), ("g1", "gpu", True, {})])
    assert estimate.wall_by_queue([10.0] * 4, ["cpu"] * 4, plain) == (40.0, 1)
    # nobody serves the queue: the runs wait, estimated as if one worker started
    assert estimate.wall_by_queue([10.0, 10.0], ["gpu", "gpu"], _workers([("c1", "cpu", True, {})])) == (20.0, 0)
    # a worker that serves both queues shares its slots between them: 8 runs of 10 s (4 cpu, 4 gpu) on one
    # cpu,gpu worker with 2 slots take 40 s on 2 slots (it was counted as 2 slots for each queue: 20 s on 4)
    both = _workers([("both", "cpu,gpu", True, {"slots": 2})])
    assert estimate.wall_by_queue([10.0] * 8, ["cpu", "gpu"] * 4, both) == (40.0, 2)
    # and a cpu-only worker beside it takes cpu runs off it
    more = _workers([("both", "cpu,gpu", True, {"slots": 1}), ("c", "cpu", True, {"slots": 1})])
    assert estimate.wall_by_queue([10.0] * 4, ["gpu", "cpu", "cpu", "cpu"], more) == (20.0, 2)


def test_the_page_counts_only_workers_that_serve_the_runs_queue(lab, open_page):
    from db import liveness

    url, _ = lab
    liveness.heartbeat("c@box", host="box", pid=1, queues="cpu", device="cpu", start=True, url=url)
    liveness.heartbeat("g@box", host="box", pid=2, queues="gpu", device="gpu", start=True, url=url)
    import streamlit as st

    from db.liveness import list_workers
    st.cache_data.clear()
    live = [w for w in list_workers(url=url) if w["alive"]]
    cpu = sum("cpu" in str(w["queues"]).split(",") for w in live)
    assert cpu < len(live)
    at = open_page("new")
    said = " ".join(c.value for c in at.caption)
    assert "of compute" in said and f"on {len(live)} workers" not in said, said
    assert (f"on {cpu} run slots" in said) if cpu > 1 else ("run slots)" not in said), said
