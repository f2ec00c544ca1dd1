"""The sweep builder: pick spec fields to vary, their values and the seeds; build a SweepSpec from
the form's base spec, and plan it through client.submit.plan (the runs, duplicates within it and in
the database: the same plan the submission and the CLI use).

An error of a grid point that comes from a varied value is shown under that value's editor, naming
the exact value: ``vary.hidden_size[1] = 0: hidden_size: got 0; …`` (the 0-based index in the list).
Errors of the base spec itself are shown under the form's field."""

from __future__ import annotations

import itertools
import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import streamlit as st
import yaml

from client.submit import plan as submit_plan
from dashboard.components import plain
from dashboard.forms import bare, field_of
from rnnlab.spec import (
    JobSpec,
    Limits,
    SpecError,
    SweepSpec,
    check_sweep_size,
    expand_sweep,
    parse_sweep,
    parse_yaml,
    short_value,
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
    try:   # the spec files' loader: aliases (a few of them can stand for billions of values) and
        vals = parse_yaml(t)   # duplicate keys are refused
    except SpecError as e:
        raise ValueError(f"could not read the values {text[:60]!r}: {e.errors[0]}") from None
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


MAX_POINTS_CHARS = 20_000


def _flow(v: Any) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10**6)
    return text.strip().removesuffix("\n...").strip()


def parse_points(text: str) -> list[dict[str, Any]]:
    """'- {cell: lstm, init.forget_bias: 3}' lines (a YAML list of mappings) → SweepSpec.points; the
    text's length is bounded by the widget (MAX_POINTS_CHARS), and the grid's size is checked with
    the rest of the sweep before anything is expanded."""
    t = (text or "").strip()
    if not t:
        return []
    if len(t) > MAX_POINTS_CHARS:
        raise ValueError(f"{len(t):,} characters; at most {MAX_POINTS_CHARS:,}")
    try:
        doc = parse_yaml(t)
    except SpecError as e:
        raise ValueError(f"could not read the points: {e.errors[0]}") from None
    if not isinstance(doc, list) or not all(isinstance(p, dict) and p for p in doc):
        raise ValueError("write one point a line, each a mapping of field paths to values, "
                         "e.g. '- {cell: lstm, init.forget_bias: 3}'")
    return [{str(k): _number(v) for k, v in p.items()} for p in doc]


def load_sweep(state: MutableMapping[str, Any], sweep: SweepSpec) -> None:
    """Put a sweep's vary lists, explicit points and seeds into the builder's widgets."""
    state[S + "fields"] = [k for k in sweep.vary]
    for k, vals in sweep.vary.items():
        state[S + "vals." + k] = ", ".join(_flow(v) for v in vals)
    state[S + "points"] = "\n".join(f"- {_flow(p)}" for p in sweep.points)
    state[S + "seeds"] = ", ".join(str(s) for s in sweep.seeds)
    state[S + "name"] = sweep.name or ""


def _error(where: Any, message: str) -> None:
    where.error(plain(message), icon=":material/error:")


class Built(NamedTuple):
    vary: dict[str, list[Any]]
    seeds: list[int]
    name: str | None
    errors: list[str]
    points: list[dict[str, Any]] = []


def render_builder(limits: Limits | None = None, slots: dict[str, Any] | None = None) -> Built:
    """Widgets of the builder; returns (vary, seeds, name, errors, points), each error also shown under its
    editor. ``slots``, when given, receives a container under each field's values (``show_errors``
    fills them once the grid is checked). Only a role that can submit gets the builder: for any
    other, nothing is read or expanded (seeds come back empty)."""
    from dashboard import auth
    from rnnlab.settings import get_settings

    limits = limits or get_settings().limits
    if not auth.can(auth.current_user(), "submit"):
        st.info("Your role cannot build sweeps (it cannot submit runs).")
        return Built({}, [], None, [])
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
        slot = st.container()
        if slots is not None:
            slots[path] = slot
        try:
            vals = parse_values(txt)
            if not vals:
                errors.append(f"vary.{path}: give at least one value")
                _error(slot, errors[-1])
            vary[path] = vals
        except ValueError as e:
            errors.append(f"vary.{path}: {e}")
            _error(slot, errors[-1])
    ss.setdefault(S + "points", "")
    with st.expander("Points: settings that go together", expanded=bool(ss[S + "points"].strip())):
        txt = st.text_area("Points (one a line; each is crossed with the fields above)", key=S + "points",
                           max_chars=MAX_POINTS_CHARS, height=110,
                           placeholder="- {cell: gru}\n- {cell: lstm, init.forget_bias: 3}",
                           help="For settings that only make sense together, e.g. a forget-gate bias that only an "
                                "LSTM has. The grid is every point × the values above × the seeds. A field is set "
                                "by a point or by the fields above, not both. Leave empty for a plain grid.")
        slot = st.container()
        if slots is not None:
            slots["points"] = slot
        try:
            points = parse_points(txt)
        except ValueError as e:
            points = []
            errors.append(f"points: {e}")
            _error(slot, errors[-1])
    a, b = st.columns(2)
    seeds_txt = a.text_input("Seeds", key=S + "seeds", max_chars=2000,
                             help="Comma-separated seeds, or a range such as 0-4.")
    name = b.text_input("Sweep name (optional)", key=S + "name", max_chars=200)
    try:
        seeds = parse_seeds(seeds_txt, limits.max_sweep_runs)
    except ValueError as e:
        errors.append(f"seeds: {e}")
        _error(a, errors[-1])
        seeds = [0]
    return Built(vary, seeds, name or None, errors, points)


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
    """A checked sweep: the specs and duplicates of client.submit.plan, or the errors. ``vary_errors``
    holds the errors of varied values, by varied path; ``form_errors`` the others (the base spec's,
    shown under the form's fields); ``errors`` all of them."""

    sweep: SweepSpec | None = None
    specs: list[JobSpec] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)   # (i, j): spec j trains what spec i does
    existing: dict[int, list[int]] = field(default_factory=dict)      # spec index -> run ids in the DB
    form_errors: list[str] = field(default_factory=list)
    vary_errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return self.form_errors + [e for v in self.vary_errors.values() for e in v]


def plan_one(spec: JobSpec, *, url: str | None = None) -> SweepPlan:
    """One job planned through client.submit.plan (its runs already in the database)."""
    p = submit_plan(spec, url=url)
    return SweepPlan(specs=p.specs, duplicates=p.duplicates, existing=p.existing)


def build(base: dict[str, Any], vary: dict[str, list[Any]], seeds: list[int], name: str | None,
          limits: Limits | None = None, *, url: str | None = None,
          points: list[dict[str, Any]] | None = None) -> SweepPlan:
    """Check the sweep (base without its seed) and plan it through client.submit.plan, which expands
    it and finds the duplicates within it and in the database at ``url``. The grid's size is checked
    by arithmetic first; no seeds (a role that cannot submit) plans nothing. Each error of a grid
    point is put under the varied path it comes from (``locate``)."""
    if not seeds:
        return SweepPlan()
    limits = limits or Limits()
    try:
        check_sweep_size(vary, len(seeds), limits, len(points or []))
        sweep = parse_sweep({"name": name, "base": {k: v for k, v in base.items() if k != "seed"},
                             "vary": vary, "points": points or [], "seeds": seeds})
    except SpecError as e:
        return SweepPlan(form_errors=list(e.errors))
    try:
        p = submit_plan(sweep, url=url, limits=limits)
    except SpecError as e:
        if all(m.startswith("[base] ") for m in e.errors):   # the base's own errors: no grid point to name
            return SweepPlan(sweep=sweep, form_errors=list(e.errors))
        vary_errors = locate(sweep, limits)
        point_paths = {k for p in sweep.points for k in p}
        placed = set(vary_errors) | (point_paths if "points" in vary_errors else set())
        rest = [m for m in e.errors if varied_path(field_of(m), [*sweep.vary, *point_paths]) not in placed]
        return SweepPlan(sweep=sweep, form_errors=rest, vary_errors=vary_errors)
    return SweepPlan(sweep=sweep, specs=p.specs, duplicates=p.duplicates, existing=p.existing)


def to_submit(plan: SweepPlan, skip_duplicates: bool) -> list[JobSpec]:
    """The specs a submission sends: all, or, skipping duplicates, each distinct spec once and none that
    is already in the database (the duplicates and runs found by client.submit.plan)."""
    if not skip_duplicates:
        return list(plan.specs)
    drop = {j for _, j in plan.duplicates} | set(plan.existing)
    return [s for k, s in enumerate(plan.specs) if k not in drop]


def varied_path(error_field: str, paths: list[str]) -> str | None:
    """The varied path an error's field comes from: the path itself, the varied path above it
    ('clip' for 'clip.max_norm'), or the varied path below it ('foo.bar' for an unknown 'foo')."""
    if error_field in paths:
        return error_field
    above = [p for p in paths if error_field.startswith(p + ".")]
    if above:
        return max(above, key=len)
    return next((p for p in paths if p.startswith(error_field + ".")), None)


def _short(v: Any) -> str:
    return short_value(v, 100)


def locate(sweep: SweepSpec, limits: Limits) -> dict[str, list[str]]:
    """{varied path: messages}: each grid point is checked alone (rnnlab.spec.expand_sweep of that
    point, with the first seed; seeds do not change validity), and each error that a varied value
    causes is named by the value's exact place: 'vary.hidden_size[1] = 0: hidden_size: got 0; …'. An
    error that holds only with some values of the other varied fields names them ('(with cell=lstm)').
    An error caused by a field of an explicit point is filed under 'points': 'points[1] = {…}: …'."""
    keys = list(sweep.vary)
    explicit = sweep.points or [{}]
    hits: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for pi, pt in enumerate(explicit):
        for idx in itertools.product(*(range(len(sweep.vary[k])) for k in keys)):
            point = {k: sweep.vary[k][i] for k, i in zip(keys, idx)}
            one = SweepSpec(name=sweep.name, base=sweep.base, vary={k: [v] for k, v in point.items()},
                            points=[pt] if pt else [], seeds=sweep.seeds[:1])
            try:
                expand_sweep(one, limits)
            except SpecError as e:
                for m in map(bare, e.errors):
                    path = varied_path(field_of(m), [*keys, *pt])
                    if path in pt:
                        hits.setdefault(("points", pi, m), []).append(point)
                    elif path is not None:
                        hits.setdefault((path, idx[keys.index(path)], m), []).append({**pt, **point})
    out: dict[str, list[str]] = {}
    for (path, i, m), points in hits.items():
        if path == "points":
            others, combos = keys, math.prod(len(sweep.vary[k]) for k in keys)
            where = f"points[{i}] = {_short(explicit[i])}"
        else:
            others = [k for k in keys if k != path]
            combos = math.prod(len(sweep.vary[k]) for k in others) * len(explicit)
            others = [*dict.fromkeys(k for p in sweep.points for k in p), *others]
            where = f"vary.{path}[{i}] = {_short(sweep.vary[path][i])}"
        if len(points) < combos:
            shown = "; ".join(" ".join(f"{k}={_short(p[k])}" for k in others if k in p) for p in points[:3])
            where += f" (with {shown}{' …' if len(points) > 3 else ''})"
        out.setdefault(path, []).append(f"{where}: {m}")
    return out


def show_errors(plan: SweepPlan, slots: dict[str, Any]) -> None:
    """Each varied value's errors in the slot under its editor (render_builder's ``slots``)."""
    for path, messages in plan.vary_errors.items():
        for m in messages:
            _error(slots.get(path, st), m)
