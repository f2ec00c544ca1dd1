"""Read a study's stored runs through the read API (``db.queries``) into a ``StudyData``.

A study's runs are the runs tagged ``Study.tag(scale)``: ``study:NAME@vN:SCALE``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from studies.core import PROFILE_COLUMNS, Study, StudyData, point_label

MAX_RUNS = 1000   # db.queries.list_runs' page cap; a study has far fewer runs
EVERY_STEP = 10 ** 9   # db.queries.profiles' max_points: keep every step of a profile


def _path(spec: dict, dotted: str):
    cur = spec
    for k in dotted.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _layer0(layers: pd.DataFrame, first: bool) -> pd.DataFrame:
    cols = ["rho", "sigma_max", "log_ratio", "horizon", "decay_per_step", "saturated_frac", "dead_frac"]
    if layers.empty:
        return pd.DataFrame(columns=["run_id"] + [c + ("0" if first else "_last") for c in cols])
    l0 = layers[layers["layer"] == 0].sort_values(["run_id", "epoch"])
    pick = l0.groupby("run_id").head(1) if first else l0.groupby("run_id").tail(1)
    if first:
        pick = pick[pick["epoch"] == 0]
    out = pick[["run_id", *cols]].copy()
    return out.rename(columns={c: c + ("0" if first else "_last") for c in cols})


def load(study: Study, scale: str, url: str | None = None) -> StudyData:
    """Every run tagged with the study's tag at ``scale``, with its final numbers and its layer-0
    diagnostics at initialization and at the last probe; every layer's gradient profile at the epochs of
    ``study.profiles_at`` (none when it is empty, the default)."""
    from db import queries as q

    tag = study.tag(scale)
    eng = q.engine_for(url)
    listed, _ = q.list_runs({"tags": [tag]}, page_size=MAX_RUNS, sort="oldest", engine=eng)
    ids = [int(i) for i in listed["id"]]
    if not ids:
        empty = pd.DataFrame(columns=["id", "status", "seed", "point", "spec"])
        return StudyData(tag=tag, runs=empty, epochs=pd.DataFrame(columns=["run_id", "epoch"]),
                         layers=pd.DataFrame(columns=["run_id", "epoch", "layer"]))
    full = q.runs_by_ids(ids, engine=eng)
    versions = sorted({v for i in ids if (v := (q.get_run(i, engine=eng) or {}).get("code_version"))})
    epochs = q.epochs(ids, max_epochs=None, engine=eng)
    layers = q.layer_stats(ids, max_epochs=None, engine=eng)
    final = q.final_summary(ids, engine=eng)[["run_id", "val_loss", "val_metric"]]
    grid = study.grid(scale)
    keys = list(dict.fromkeys(k for ks, _ in grid for k in ks))   # Study.varied, from the grid at hand
    runs = pd.DataFrame({
        "id": [int(i) for i in full["id"]], "status": list(full["status"]), "seed": [int(s) for s in full["seed"]],
        "cell": list(full["cell"]), "baseline_loss": [float(b) if b is not None and not pd.isna(b) else math.nan
                                                      for b in full["baseline_loss"]],
        "spec": list(full["spec"]),
    })
    for k in keys:   # each varied field as the study wrote it (a stored clip 'none' is a full dict)
        runs[k] = pd.Series([_as_given(study, scale, k, _path(s, k)) for s in runs["spec"]], dtype=object)
    runs["point"] = [_point_of(grid, s) for s in runs["spec"]] if keys else ""
    runs = runs.merge(final.rename(columns={"run_id": "id"}), on="id", how="left")
    for first in (True, False):
        runs = runs.merge(_layer0(layers, first).rename(columns={"run_id": "id"}), on="id", how="left")
    profiles = _profiles(ids, [s for s in runs["spec"]], study.profiles_at, eng) if study.profiles_at else \
        pd.DataFrame(columns=list(PROFILE_COLUMNS))
    return StudyData(tag=tag, runs=runs, epochs=epochs, layers=layers, code_versions=versions, profiles=profiles)


def _profiles(ids: list[int], specs: list[dict], at: tuple[int, ...], eng) -> pd.DataFrame:
    """Every layer's profile ‖∂L/∂h_t^(k)‖ of the runs at each epoch of ``at`` (the latest probed epoch
    ≤ it, as db.queries.profiles picks), every step, in one frame with a ``layer`` column."""
    from db import queries as q

    depth = max((int(s.get("num_layers") or 1) for s in specs if isinstance(s, dict)), default=1)
    frames = []
    for epoch in at:
        for layer in range(depth):
            p = q.profiles(ids, epoch=int(epoch), layer=layer, kind="h", max_points=EVERY_STEP, engine=eng)
            if len(p):
                frames.append(p.assign(layer=layer))
    if not frames:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    out = pd.concat(frames, ignore_index=True)[list(PROFILE_COLUMNS)]
    return out.drop_duplicates(["run_id", "layer", "epoch", "t"], ignore_index=True)


def _point_of(grid: list[tuple[list[str], tuple]], spec: dict) -> str:
    """The label of the grid point a stored spec belongs to (``Study.points``' label): of the points whose
    every setting the spec holds, the one that sets the most fields; '' when none does."""
    hits = [(keys, values) for keys, values in grid if all(_same(v, _path(spec, k)) for k, v in zip(keys, values))]
    if not hits:
        return ""
    keys, values = max(hits, key=lambda kv: len(kv[0]))
    return point_label(keys, values)


def _as_given(study: Study, scale: str, key: str, stored):
    """The grid value as the study wrote it, for a value read back from a stored spec (a clip dict
    comes back with every field filled in; the string 'none' comes back as {mode: none, ...})."""
    sc = study.scale(scale)
    for v in [*sc.vary.get(key, []), *(p[key] for p in sc.points if key in p)]:
        if _same(v, stored):
            return v
    return stored


def _same(given, stored) -> bool:
    if given == stored:
        return True
    if isinstance(stored, dict):
        if isinstance(given, str):   # a shorthand: clip 'none', init 'orthogonal'
            return stored.get("mode") == given or (stored.get("recurrent") == given == stored.get("input"))
        if isinstance(given, dict):
            return all(_same(v, stored.get(k)) for k, v in given.items())
    if isinstance(given, (int, float)) and isinstance(stored, (int, float)):
        return bool(np.isclose(given, stored))
    return json.dumps(given, sort_keys=True) == json.dumps(stored, sort_keys=True)
