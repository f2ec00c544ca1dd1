"""Strategy comparison: group runs by one factor (cell, activation, init, clipping, depth, T),
aggregate their seeds (mean with a min–max or 95% confidence band) and say in plain words which
mitigation works and how sure we can be. Pure pandas/numpy: no Streamlit, no database."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

SOLVED_FRACTION = 0.1   # a run "solves" the task when its final val loss ≤ 10% of the trivial baseline
_T95 = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
        2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04]


def _clip(s: dict) -> str:
    c = s.get("clip") or {}
    return {"norm": f"norm ≤ {c.get('max_norm')}", "value": f"value ±{c.get('clip_value')}"}.get(c.get("mode"), "none")


def _init(s: dict) -> str:
    i = s.get("init") or {}
    name = i.get("recurrent") if i.get("recurrent") == i.get("input") else f"{i.get('recurrent')} / {i.get('input')}"
    return name + (f", ρ={i['spectral_radius']}" if i.get("spectral_radius") else "")


def _all_but_seed(s: dict) -> str:
    act = f"/{s.get('activation') or 'tanh'}" if s["cell"] == "rnn" else ""
    return (f"{s['cell']}{act} {s['task']['name']} T={s['task']['seq_len']} L{s['num_layers']} "
            f"h{s['hidden_size']} init {_init(s)} clip {_clip(s)} {s['optimizer']['name']} lr={s['optimizer']['lr']}")


FACTORS: dict[str, Callable[[dict], Any]] = {
    "cell": lambda s: s["cell"],
    "activation": lambda s: (s.get("activation") or "tanh") if s["cell"] == "rnn" else f"{s['cell']} (gated)",
    "init": _init,
    "clipping": _clip,
    "depth": lambda s: s["num_layers"],
    "T": lambda s: s["task"]["seq_len"],
    "everything but the seed": _all_but_seed,
}


def varying_factor(runs: pd.DataFrame) -> str:
    """The first factor whose value differs between the runs (what a sweep varied), else 'cell'."""
    for name, fn in FACTORS.items():
        if name != "everything but the seed" and len({str(fn(s)) for s in runs["spec"]}) > 1:
            return name
    return "cell"


def t95(n: int) -> float:
    return _T95[n - 2] if 2 <= n <= 31 else 1.96


def groups_of(runs: pd.DataFrame, factor: str) -> dict[int, str]:
    """run id → its group's label under ``factor``."""
    fn = FACTORS[factor]
    return {int(i): str(fn(s)) for i, s in zip(runs["id"], runs["spec"])}


def _stats(values: np.ndarray, band: str) -> tuple[float, float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return (math.nan,) * 3
    m = float(v.mean())
    if band == "min–max" or v.size < 2:
        return m, float(v.min()), float(v.max())
    h = t95(v.size) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - h, m + h


def aggregate(df: pd.DataFrame, groups: dict[int, str], x: str, y: str, band: str = "min–max",
              log: bool = False) -> pd.DataFrame:
    """Mean and band of ``y`` per group and ``x`` (in log10 space when ``log``, returned in linear units)."""
    if df.empty or y not in df:
        return pd.DataFrame(columns=["group", x, "mean", "lo", "hi", "n"])
    d = df.assign(group=df["run_id"].map(groups)).dropna(subset=["group"])
    vals = d[y].astype(float)
    if log:
        vals = np.log10(vals.where(vals > 0))
    d = d.assign(_v=vals)
    rows = []
    for (grp, xv), g in d.groupby(["group", x], sort=False):
        m, lo, hi = _stats(g["_v"].to_numpy(dtype=float), band)
        rows.append({"group": grp, x: xv, "mean": m, "lo": lo, "hi": hi, "n": int(g["run_id"].nunique())})
    out = pd.DataFrame(rows).sort_values(["group", x])
    if log:
        out[["mean", "lo", "hi"]] = np.power(10.0, out[["mean", "lo", "hi"]])
    return out


def summary(runs: pd.DataFrame, final: pd.DataFrame, groups: dict[int, str]) -> pd.DataFrame:
    """One row per group: runs, solve rate, final loss (mean and 95% CI), loss ÷ baseline, horizon,
    decay per step, diverged count and a verdict."""
    d = runs[["id", "status", "seed", "baseline_loss", "seq_len"]].merge(final, left_on="id", right_on="run_id", how="left")
    d["group"] = d["id"].map(groups)
    rows = []
    for grp, g in d.groupby("group", sort=False):
        done = g[g["status"].isin(["succeeded", "diverged"])]
        ratio = (done["val_loss"] / done["baseline_loss"]).to_numpy(dtype=float)
        solved = int(np.sum(ratio <= SOLVED_FRACTION))
        logl = np.log10(done["val_loss"].where(done["val_loss"] > 0)).to_numpy(dtype=float)
        m, lo, hi = _stats(logl, "95% CI")
        rows.append({
            "group": grp, "runs": len(g), "finished": len(done), "seeds": g["seed"].nunique(),
            "diverged": int((done["status"] == "diverged").sum()),
            "solve rate": solved / len(done) if len(done) else math.nan,
            "final loss": 10 ** m if math.isfinite(m) else math.nan,
            "loss 95% CI": f"{10 ** lo:.3g} – {10 ** hi:.3g}" if math.isfinite(lo) and len(done) > 1 else "",
            "loss ÷ baseline": float(np.nanmean(ratio)) if np.isfinite(ratio).any() else math.nan,
            "horizon (steps)": float(g["horizon"].mean()) if g["horizon"].notna().any() else math.nan,
            "decay / step": float(g["decay_per_step"].mean()) if g["decay_per_step"].notna().any() else math.nan,
            "T": int(g["seq_len"].max()), "_lo": lo, "_hi": hi, "_m": m,
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["verdict"] = [verdict(r) for r in out.to_dict("records")]
    return out


def verdict(r: dict) -> str:
    """A plain-words verdict for one group."""
    fin = r["finished"]
    if fin == 0:
        return "no finished runs yet"
    parts = []
    if r["diverged"]:
        parts.append(f"unstable: {r['diverged']}/{fin} runs diverged")
    if r["solve rate"] >= 0.8:
        parts.append(f"solves the task ({round(r['solve rate'] * fin)}/{fin} runs)")
    elif r["loss ÷ baseline"] >= 0.9:
        parts.append("no better than the trivial baseline")
    elif math.isfinite(r["loss ÷ baseline"]):
        parts.append(f"partly learns (loss at {r['loss ÷ baseline']:.0%} of the baseline)")
    h = r["horizon (steps)"]
    if math.isfinite(h):
        parts.append(f"gradients reach ≈{h:.0f} of {r['T']} steps back" if h < r["T"] else "gradients reach all the way back")
    parts.append("one seed: anecdotal" if r["seeds"] < 2 else f"{r['seeds']} seeds")
    return "; ".join(parts)


def overall(table: pd.DataFrame, factor: str) -> str:
    """Which group works best, and whether the seeds separate it from the runner-up."""
    t = table[table["finished"] > 0]
    if t.empty:
        return "No finished runs yet: nothing to conclude."
    if len(t) == 1:
        return f"Only one {factor} value ({t['group'].iloc[0]}) has finished runs: add the others to compare."
    t = t.assign(_key=list(zip(-t["solve rate"].fillna(0), t["_m"].fillna(np.inf)))).sort_values("_key")
    best, second = t.iloc[0], t.iloc[1]
    lead = (f"Best {factor} here: **{best['group']}** (solve rate {best['solve rate']:.0%}, final loss "
            f"{best['final loss']:.3g}); runner-up {second['group']} ({second['solve rate']:.0%}, {second['final loss']:.3g}).")
    if min(best["seeds"], second["seeds"]) < 2:
        sure = "With a single seed per group this is a hint, not a result: add seeds."
    elif math.isfinite(best["_hi"]) and math.isfinite(second["_lo"]) and best["_hi"] < second["_lo"]:
        sure = "Their 95% intervals of the final log-loss do not overlap: the difference is clear with these seeds."
    elif best["solve rate"] == 1 and second["solve rate"] == 0:
        sure = (f"Every run of {best['group']} solves the task and none of {second['group']} does, but with "
                f"{int(min(best['seeds'], second['seeds']))} seeds the 95% intervals still overlap: consistent, add seeds to be sure.")
    else:
        sure = "Their 95% intervals overlap: not separable with these seeds; add seeds before concluding."
    return f"{lead} {sure}"
