"""The sweep builder: pick spec fields to vary, their values and the seeds; build a SweepSpec from
the form's base spec, and plan it (runs, duplicates within it and in the database, time)."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import yaml

from rnnlab.spec import (
    JobSpec,
    Limits,
    SpecError,
    SweepSpec,
    check_sweep_size,
    expand_sweep,
    find_duplicates,
    parse_sweep,
)

S = "sw."
VARY_FIELDS: dict[str, tuple[str, str]] = {  # path: (suggested values, help)
    "cell": ("rnn, lstm, gru", "rnn, lstm or gru"),
    "activation": ("sigmoid, tanh, relu", "vanilla cell only (the base cell must be rnn)"),
    "init": ("zeros, xavier_uniform, kaiming, orthogonal, identity", "sets both W_hh and W_ih"),
    "init.recurrent": ("default, orthogonal, identity", "W_hh only"),
    "init.spectral_radius": ("0.9, 1.0, 1.1", "rescale W_hh to this spectral radius"),
    "init.forget_bias": ("0, 1, 2", "LSTM only"),
    "clip": ("none, {mode: norm, max_norm: 1.0}", "none, or {mode: norm, max_norm: θ} / {mode: value, clip_value: c}"),
    "clip.max_norm": ("0.5, 1, 5", "the base clipping mode must be norm"),
    "num_layers": ("1, 2, 3, 4", "depth"),
    "task.seq_len": ("25, 50, 100, 200, 400", "sequence length T"),
    "hidden_size": ("32, 64, 128", "units per layer"),
    "optimizer.lr": ("0.0001, 0.001, 0.01", "learning rate"),
    "optimizer.name": ("sgd, adam, rmsprop", "momentum must be 0 for adam"),
    "batch_size": ("32, 64, 128", ""),
    "epochs": ("10, 20", ""),
}


def parse_values(text: str) -> list[Any]:
    """'rnn, lstm' or '[1, 2]' or 'none, {mode: norm, max_norm: 1}' → a list (YAML flow syntax)."""
    t = (text or "").strip()
    if not t:
        return []
    if not t.startswith("["):
        t = f"[{t}]"
    try:
        vals = yaml.safe_load(t)
    except yaml.YAMLError as e:
        raise ValueError(f"could not read the values {text!r}: {str(e).splitlines()[0]}") from None
    vals = vals if isinstance(vals, list) else [vals]
    return [_number(v) for v in vals]


def _number(v: Any) -> Any:
    """PyYAML reads 1e-3 (no dot) as a string: make such strings numbers."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def load_sweep(state: MutableMapping[str, Any], sweep: SweepSpec) -> None:
    """Put a sweep's vary lists and seeds into the builder's widgets."""
    state[S + "fields"] = [k for k in sweep.vary]
    for k, vals in sweep.vary.items():
        state[S + "vals." + k] = ", ".join(
            yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...").strip() for v in vals)
    state[S + "seeds"] = ", ".join(str(s) for s in sweep.seeds)
    state[S + "name"] = sweep.name or ""


def render_builder(limits: Limits | None = None) -> tuple[dict[str, list[Any]], list[int], str | None, list[str]]:
    """Widgets of the builder; returns (vary, seeds, name, errors). Only a role that can submit gets
    the builder: for any other, nothing is read or expanded (seeds come back empty)."""
    from dashboard import auth
    from rnnlab.settings import get_settings

    limits = limits or get_settings().limits
    if not auth.can(auth.current_user(), "submit"):
        st.info("Your role cannot build sweeps (it cannot submit runs).")
        return {}, [], None, []
    ss = st.session_state
    ss.setdefault(S + "fields", ["cell"])
    ss.setdefault(S + "seeds", "0, 1, 2")
    ss.setdefault(S + "name", "")
    errors: list[str] = []
    options = list(dict.fromkeys([*VARY_FIELDS, *ss[S + "fields"]]))
    st.multiselect("Fields to vary", options, key=S + "fields", accept_new_options=True,
                   help="Any dotted spec path works (type it), e.g. optimizer.momentum or task.variant.")
    vary: dict[str, list[Any]] = {}
    for path in ss[S + "fields"]:
        suggested, hint = VARY_FIELDS.get(path, ("", "any spec field"))
        ss.setdefault(S + "vals." + path, suggested)
        txt = st.text_input(f"Values of {path}", key=S + "vals." + path, max_chars=2000,
                            help=f"Comma-separated; {hint}.")
        try:
            vals = parse_values(txt)
            if not vals:
                errors.append(f"vary.{path}: give at least one value")
            vary[path] = vals
        except ValueError as e:
            errors.append(f"vary.{path}: {e}")
    a, b = st.columns(2)
    seeds_txt = a.text_input("Seeds", key=S + "seeds", max_chars=2000,
                             help="Comma-separated seeds, or a range such as 0-4.")
    name = b.text_input("Sweep name (optional)", key=S + "name", max_chars=200)
    try:
        seeds = parse_seeds(seeds_txt, limits.max_sweep_runs)
    except ValueError as e:
        errors.append(f"seeds: {e}")
        seeds = [0]
    return vary, seeds, name or None, errors


MAX_SEED = 2**31 - 1


def _seed_parts(text: str) -> list[tuple[int, int]]:
    """'0-4, 7' → [(0, 4), (7, 7)]: bounds only, nothing expanded."""
    parts = []
    for part in [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]:
        lo, sep, hi = part.partition("-") if "-" in part[1:] else (part, "", part)
        lo, hi = lo.strip(), hi.strip()
        if not (lo.isascii() and lo.isdigit() and hi.isascii() and hi.isdigit()):
            raise ValueError(f"could not read {part[:40]!r} (write e.g. 0-4)" if sep
                             else f"{part[:40]!r} is not a non-negative whole number")
        if len(lo) > 10 or len(hi) > 10 or int(hi) > MAX_SEED:
            raise ValueError(f"{part[:40]!r}: seeds go up to {MAX_SEED}")
        if int(hi) < int(lo):
            raise ValueError(f"could not read {part!r}: the range ends before it starts (write e.g. 0-4)")
        parts.append((int(lo), int(hi)))
    return parts


def parse_seeds(text: str, max_count: int | None = None) -> list[int]:
    """'0-2, 5' → [0, 1, 2, 5]. The number of seeds is counted from the bounds and checked against
    ``max_count`` (default: RNNLAB_MAX_SWEEP_RUNS's default) before any list is built."""
    cap = Limits().max_sweep_runs if max_count is None else max_count
    parts = _seed_parts(text)
    if not parts:
        raise ValueError("give at least one seed")
    n = sum(hi - lo + 1 for lo, hi in parts)
    if n > cap:
        raise ValueError(f"got {n:,} seeds; a sweep may have at most {cap} runs (RNNLAB_MAX_SWEEP_RUNS raises it)")
    out = [s for lo, hi in parts for s in range(lo, hi + 1)]
    return list(dict.fromkeys(out))


@dataclass
class SweepPlan:
    sweep: SweepSpec | None = None
    specs: list[JobSpec] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build(base: dict[str, Any], vary: dict[str, list[Any]], seeds: list[int], name: str | None,
          limits: Limits | None = None) -> SweepPlan:
    """Expand the sweep (base without its seed) into validated specs, collecting every error. The grid's
    size is checked by arithmetic first; no seeds (a role that cannot submit) expands nothing."""
    if not seeds:
        return SweepPlan()
    try:
        check_sweep_size(vary, len(seeds), limits or Limits())
    except SpecError as e:
        return SweepPlan(errors=list(e.errors))
    base = {k: v for k, v in base.items() if k != "seed"}
    try:
        sweep = parse_sweep({"name": name, "base": base, "vary": vary, "seeds": seeds})
    except SpecError as e:
        return SweepPlan(errors=list(e.errors))
    try:
        specs = expand_sweep(sweep, limits)
    except SpecError as e:
        return SweepPlan(sweep=sweep, errors=list(e.errors))
    return SweepPlan(sweep=sweep, specs=specs, duplicates=find_duplicates(specs))
