"""Conversions between engine records (rnnlab.records) and table rows, keeping NaN and ±inf.

Float columns: NaN is stored as NULL and its column name is listed in the row's ``nan_fields``
(SQLite cannot store NaN; Postgres could, but NULL keeps SQL such as ``ORDER BY val_loss`` and
``MAX()`` meaningful on both backends). ±inf are stored as themselves. JSON values use the
strings 'NaN', 'Infinity', '-Infinity'. Gradient profiles keep full float64 precision, written in
the shortest text that parses back to the same double, so every summary and the P13 bound can be
re-checked exactly from the database.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rnnlab.records import EpochRecord, LayerStat, ParamStat, RunInfo, decode_float, encode_float

EPOCH_FLOATS = ("train_loss", "val_loss", "val_metric", "val_loss_se", "grad_norm_mean", "grad_norm_max",
                "clip_fraction")
PARAM_FLOATS = ("grad_norm_mean", "grad_norm_max", "update_ratio", "weight_norm")
LAYER_FLOATS = (
    "rho", "sigma_max", "gamma_sigma_max", "saturated_frac", "dead_frac",
    "log_ratio", "decay_per_step", "horizon", "steps_in_past",
)
LAYER_JSON = ("gate_spectra", "gate_mean", "gate_saturated")


def is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def split_nan(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Replace NaN by None in ``fields`` and list them in ``nan_fields`` (None when there are none)."""
    out = dict(values)
    nans = [f for f in fields if is_nan(out.get(f))]
    for f in nans:
        out[f] = None
    out["nan_fields"] = nans or None
    return out


def join_nan(row: dict[str, Any]) -> dict[str, Any]:
    """Inverse of split_nan: put NaN back into the columns named by ``nan_fields``."""
    out = dict(row)
    for f in out.pop("nan_fields", None) or ():
        out[f] = math.nan
    return out


def encode_json(value: Any) -> Any:
    """Recursively make a value JSON-safe (NaN/±inf → strings)."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, dict):
        return {k: encode_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_json(v) for v in value]
    return value


def decode_json(value: Any) -> Any:
    """Inverse of encode_json."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return decode_float(value)
    if isinstance(value, dict):
        return {k: decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_json(v) for v in value]
    return value


def compact(x: float) -> float | str:
    """One profile value as stored: the float64 itself, non-finite as a string."""
    return float(x) if math.isfinite(x) else encode_float(x)


class CompactArray(list):
    """A list of profile values that the engine's JSON serializer writes in the shortest form."""


def dumps_array(values: CompactArray) -> str:
    """JSON text of a profile: each float as Python's repr (the shortest text that parses back to the
    same float64, written by json's C encoder), non-finite values as strings."""
    return json.dumps(values, separators=(",", ":"))


def info_row(info: RunInfo) -> dict[str, Any]:
    """Columns of ``runs`` set from the engine's RunInfo."""
    d = encode_json(vars(info).copy())
    return {
        "info": d,
        "metric_name": info.metric_name,
        "baseline_loss": None if is_nan(info.baseline_loss) else info.baseline_loss,
        "baseline_metric": None if is_nan(info.baseline_metric) else info.baseline_metric,
        "baseline_heldout_loss": None if info.baseline_heldout_loss is None or is_nan(info.baseline_heldout_loss)
        else info.baseline_heldout_loss,
    }


def epoch_rows(run_id: int, rec: EpochRecord) -> dict[str, list[dict[str, Any]]]:
    """Rows for every table an EpochRecord touches, keyed by table name."""
    e = rec.epoch
    base = {k: getattr(rec, k) for k in (
        "steps", "nonfinite_steps", "train_seconds", "diag_seconds", "probed", *EPOCH_FLOATS)}
    epochs = [split_nan({"run_id": run_id, "epoch": e, **base}, EPOCH_FLOATS)]
    params, hists = [], []
    for p in rec.params:
        vals = {k: getattr(p, k) for k in PARAM_FLOATS}
        params.append(split_nan({"run_id": run_id, "epoch": e, "param": p.name, **vals}, PARAM_FLOATS))
        hists.append({"run_id": run_id, "epoch": e, "param": p.name, "counts": list(p.hist),
                      "zeros": p.hist_zeros, "nonfinite": p.hist_nonfinite})
    layers, profiles = [], []
    for ls in rec.layers:
        vals = {k: getattr(ls, k) for k in LAYER_FLOATS}
        vals.update({k: encode_json(getattr(ls, k)) for k in LAYER_JSON})
        layers.append(split_nan({"run_id": run_id, "epoch": e, "layer": ls.layer, **vals}, LAYER_FLOATS))
        for kind, norms in (("h", ls.grad_h), ("c", ls.grad_c), ("h_last", ls.grad_h_last)):
            if norms is not None:
                profiles.append({"run_id": run_id, "epoch": e, "layer": ls.layer, "kind": kind,
                                 "seq_len": len(norms), "norms": CompactArray(compact(x) for x in norms)})
    return {"epochs": epochs, "param_stats": params, "histograms": hists,
            "layer_stats": layers, "grad_profiles": profiles}


def record_from_rows(epoch: dict, params: list[dict], hists: list[dict], layers: list[dict],
                     profiles: list[dict]) -> EpochRecord:
    """Rebuild an EpochRecord from its rows (profiles come back exactly as recorded)."""
    ep = join_nan(epoch)
    hist_by = {h["param"]: h for h in hists}
    # float(): Postgres JSONB prints numbers in plain notation, so 1e2 comes back as the integer 100
    prof_by = {(p["layer"], p["kind"]): [float(decode_float(x)) for x in p["norms"]] for p in profiles}
    pstats = []
    for p in params:
        p = join_nan(p)
        h = hist_by.get(p["param"], {"counts": [], "zeros": 0, "nonfinite": 0})
        pstats.append(ParamStat(name=p["param"], **{k: p[k] for k in PARAM_FLOATS},
                                hist=list(h["counts"]), hist_zeros=h["zeros"], hist_nonfinite=h["nonfinite"]))
    lstats = []
    for ls in layers:
        ls = join_nan(ls)
        lstats.append(LayerStat(
            layer=ls["layer"], **{k: ls[k] for k in LAYER_FLOATS},
            **{k: decode_json(ls[k]) or {} for k in LAYER_JSON},
            grad_h=prof_by.get((ls["layer"], "h"), []), grad_c=prof_by.get((ls["layer"], "c")),
            grad_h_last=prof_by.get((ls["layer"], "h_last")),
        ))
    return EpochRecord(
        epoch=ep["epoch"], steps=ep["steps"], **{k: ep[k] for k in EPOCH_FLOATS},
        nonfinite_steps=ep["nonfinite_steps"], train_seconds=ep["train_seconds"],
        diag_seconds=ep["diag_seconds"], probed=bool(ep["probed"]), params=pstats, layers=lstats,
    )
