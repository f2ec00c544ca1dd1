"""Every layer summary can be re-derived from stored rows: a tiny real training is recorded through
db.store, then log_ratio, decay_per_step, horizon and steps_in_past are recomputed from the
grad_profiles rows SELECTed through SQL, with the formulas of docs/metrics.md written out here
(independent of models/diagnostics.py), and compared with the stored layer_stats, on SQLite and
Postgres. Profiles come back exactly, so the P13 bound can be checked from the database too."""

import math

import numpy as np
import pytest
from sqlalchemy import text

from db import store
from db.engine import get_engine
from models import describe, train
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 8, "probe": {"batch_size": 4},
        "device": "cpu", "optimizer": {"name": "adam", "lr": 0.01}}
COPY = {**TINY, "cell": "lstm", "num_layers": 2, "task": {"name": "copy", "seq_len": 8, "n_symbols": 4, "n_copy": 3}}
ADDING = {**TINY, "cell": "rnn", "activation": "tanh", "task": {"name": "adding", "seq_len": 15}}

SQLITE_PROFILE = """SELECT p.epoch, p.layer, CAST(j.key AS INTEGER) AS t, j.value AS norm
    FROM grad_profiles p, json_each(p.norms) j WHERE p.run_id = :r AND p.kind = :k"""
POSTGRES_PROFILE = """SELECT p.epoch, p.layer, e.i - 1 AS t, e.v AS norm
    FROM grad_profiles p, jsonb_array_elements_text(p.norms) WITH ORDINALITY e(v, i)
    WHERE p.run_id = :r AND p.kind = :k"""
LAYERS = """SELECT epoch, layer, log_ratio, decay_per_step, horizon, steps_in_past, gamma_sigma_max
    FROM layer_stats WHERE run_id = :r ORDER BY epoch, layer"""


def _record(db_url, spec):
    """Train ``spec`` and record every epoch through db.store, as the worker does."""
    (run_id,) = store.create_runs([spec], url=db_url)
    attempt = store.claim_run(run_id, "test", url=db_url)["attempt"]
    recs = []

    def on_epoch(rec):
        recs.append(rec)
        store.record_epoch(run_id, rec, attempt=attempt, url=db_url)

    res = train(spec, on_info=lambda i: store.record_info(run_id, i, attempt=attempt, url=db_url),
                on_epoch=on_epoch)
    assert res.outcome == "succeeded"
    return run_id, recs


def _profiles(db_url, run_id, kind):
    """{(epoch, layer): [norm_t for t = 1..T]} straight from the grad_profiles rows, through SQL."""
    sql = SQLITE_PROFILE if db_url.startswith("sqlite") else POSTGRES_PROFILE
    out: dict[tuple[int, int], dict[int, float]] = {}
    with get_engine(db_url).connect() as conn:
        for epoch, layer, t, norm in conn.execute(text(sql), {"r": run_id, "k": kind}):
            out.setdefault((epoch, layer), {})[int(t)] = float(norm)   # Postgres gives the JSON text
    return {key: [v[t] for t in range(len(v))] for key, v in out.items()}


def _layer_rows(db_url, run_id):
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(text(LAYERS), {"r": run_id}).mappings().all()
    nan = lambda x: math.nan if x is None else x  # noqa: E731  (NaN is stored as NULL)
    return {(r["epoch"], r["layer"]): {k: nan(v) for k, v in r.items()} for r in rows}


# -- the documented formulas (docs/metrics.md, "Decay measures"), written out independently ----------

def _log_ratio(d):
    return math.log10(d[0] / d[-1])


def _decay_per_step(d):
    """Slope of log10 d_t against k = T − t over the finite positive points (numpy's least squares)."""
    k = np.array([len(d) - 1 - i for i, x in enumerate(d) if math.isfinite(x) and x > 0], dtype=float)
    y = np.array([math.log10(x) for x in d if math.isfinite(x) and x > 0])
    return float(np.polyfit(k, y, 1)[0])


def _horizon(d):
    steps = 0
    for x in reversed(d[:-1]):
        if not x >= 1e-3 * d[-1]:
            return float(steps)
        steps += 1
    return float(len(d) - 1)


def _steps_in_past(d):
    return sum(x * x >= 1e-20 for x in d) / len(d)


def _check_summaries(profiles, layers):
    assert profiles.keys() == layers.keys() and profiles
    for key, d in profiles.items():
        row = layers[key]
        assert row["log_ratio"] == pytest.approx(_log_ratio(d), rel=1e-12, abs=1e-12), key
        assert row["decay_per_step"] == pytest.approx(_decay_per_step(d), rel=1e-9, abs=1e-12), key
        assert row["horizon"] == _horizon(d), key
        assert row["steps_in_past"] == _steps_in_past(d), key


def test_every_step_task_summaries_come_from_the_stored_last_step_profile(db_url):
    run_id, recs = _record(db_url, parse_spec(COPY))
    last, full = _profiles(db_url, run_id, "h_last"), _profiles(db_url, run_id, "h")
    layers = _layer_rows(db_url, run_id)
    _check_summaries(last, layers)
    assert len(last) == len(recs) * 2 and all(len(d) == 8 + 2 * 3 for d in last.values())
    # the full-loss profile is a different curve: the summaries could not be re-derived from it
    assert any(abs(_log_ratio(full[key]) - layers[key]["log_ratio"]) > 0.1 for key in full)


def test_last_step_task_summaries_come_from_the_stored_profile(db_url):
    run_id, recs = _record(db_url, parse_spec(ADDING))
    _check_summaries(_profiles(db_url, run_id, "h"), _layer_rows(db_url, run_id))
    assert _profiles(db_url, run_id, "h_last") == {}   # for these tasks 'h' is the last-step profile


@pytest.mark.parametrize("spec", [COPY, ADDING], ids=["copy-lstm", "adding-rnn"])
def test_profiles_come_back_exactly(db_url, spec):
    run_id, recs = _record(db_url, parse_spec(spec))
    stored = store.epoch_records(run_id, url=db_url)
    sql = {kind: _profiles(db_url, run_id, kind) for kind in ("h", "c", "h_last")}
    for rec, back in zip(recs, stored, strict=True):
        for a, b in zip(rec.layers, back.layers, strict=True):
            assert (b.grad_h, b.grad_c, b.grad_h_last) == (a.grad_h, a.grad_c, a.grad_h_last)
            for kind, values in (("h", a.grad_h), ("c", a.grad_c), ("h_last", a.grad_h_last)):
                assert sql[kind].get((rec.epoch, a.layer)) == values   # bit for bit, also through SQL


@pytest.mark.parametrize("spec,kind", [
    ({**ADDING, "hidden_size": 16}, "h"),
    ({**ADDING, "hidden_size": 16, "num_layers": 2}, "h"),
    ({**COPY, "cell": "rnn", "activation": "tanh", "hidden_size": 16}, "h_last"),
], ids=["adding", "adding-2-layers", "copy-2-layers"])
def test_the_p13_bound_for_the_top_layer_can_be_checked_from_the_database(db_url, spec, kind):
    run_id, _ = _record(db_url, parse_spec(spec))
    top = spec.get("num_layers", 1) - 1
    layers = _layer_rows(db_url, run_id)
    checked = 0
    for (epoch, layer), g in _profiles(db_url, run_id, kind).items():
        if layer != top:
            continue
        bound = layers[(epoch, layer)]["gamma_sigma_max"]
        for t in range(1, len(g)):   # ‖g_{t−1}‖ ≤ γ·σ_max·‖g_t‖, up to float32 rounding in backprop
            assert g[t - 1] <= bound * g[t] * (1 + 1e-5) + 1e-30, (epoch, layer, t)
            checked += g[t] > 0
    assert checked > 20


def test_heldout_baseline_and_val_loss_se_are_stored(db_url):
    spec = parse_spec(ADDING)
    run_id, recs = _record(db_url, spec)
    with get_engine(db_url).connect() as conn:
        base = conn.execute(text("SELECT baseline_heldout_loss FROM runs WHERE id = :r"), {"r": run_id}).scalar_one()
        se = dict(conn.execute(text("SELECT epoch, val_loss_se FROM epochs WHERE run_id = :r"), {"r": run_id}).all())
    assert base == describe(spec).baseline_heldout_loss and 0.16 < base < 0.17
    assert se == {r.epoch: r.val_loss_se for r in recs} and all(0 < s < 0.1 for s in se.values())
    rec = recs[-1]
    rec.val_loss_se = math.nan   # NaN survives like the other floats (NULL + nan_fields)
    store.record_epoch(run_id, rec, attempt=1, url=db_url)
    assert math.isnan(store.epoch_records(run_id, url=db_url)[-1].val_loss_se)
