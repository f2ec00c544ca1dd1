"""The job-spec form: every JobSpec field as a widget with help text, fields that do not apply
hidden, and SpecError messages shown next to the field they name.

Widget values live in st.session_state under ``f.<dotted spec path>``; ``collect`` turns them into a
spec mapping (applying the visibility rules), ``validate`` runs rnnlab.spec.parse_spec on it, and
``render`` draws the widgets with each error under its field.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import streamlit as st

from dashboard.components import flatten, plain
from rnnlab.spec import TASK_NAMES, ClipSpec, InitSpec, JobSpec, Limits, SpecError, parse_spec

P = "f."
INITS = ["default", "zeros", "normal", "uniform", "xavier_uniform", "xavier_normal", "kaiming", "orthogonal",
         "identity"]
ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu", "prelu"]
TASK_FIELDS = {  # the fields each task has, besides its name
    "adding": ["variant", "seq_len"], "copy": ["seq_len", "n_symbols", "n_copy"],
    "temporal_order": ["variant", "seq_len"], "digits": ["permuted", "perm_seed"],
    "charlm": ["path", "seq_len"], "forecast": ["series", "path", "seq_len"],
}
TASK_DEFAULTS = {
    "adding": {"variant": "a16", "seq_len": 100}, "copy": {"seq_len": 50, "n_symbols": 8, "n_copy": 10},
    "temporal_order": {"variant": "p13", "seq_len": 50}, "digits": {"permuted": False, "perm_seed": 0},
    "charlm": {"path": "", "seq_len": 100}, "forecast": {"series": "sine", "path": "", "seq_len": 100},
}
TASK_HELP = {
    "adding": "Adding problem: sum (a16, baseline MSE 1/6) or mean (p13, baseline 1/24) of two marked values.",
    "copy": "Copy memory: recall n_copy symbols after T blanks; baseline n_copy·ln(n_symbols)/(T+2·n_copy).",
    "temporal_order": "Temporal order: classify the order of two symbols among distractors (4 classes, chance 25%).",
    "digits": "Sequential 8×8 digits, one pixel per step (T = 64), optionally permuted.",
    "charlm": "Character-level language model on a text file (empty path: the bundled text).",
    "forecast": "One-step-ahead forecasting of a sine mixture, Mackey-Glass (τ=17) or a CSV of series.",
}


def defaults() -> dict[str, Any]:
    """Widget defaults: the JobSpec defaults plus the form's own switches."""
    d = {P + k: v for k, v in flatten(JobSpec().to_dict()).items()}
    for task, fields in TASK_DEFAULTS.items():
        for k, v in fields.items():
            d[f"{P}task.{task}.{k}"] = v
    d.update({P + "name": "", P + "activation": "tanh", P + "leaky_slope": 0.01, P + "init.spectral_radius": 1.0,
              P + "init.spectral_radius_on": False, P + "init.forget_bias": 1.0, P + "init.forget_bias_on": False,
              P + "init.bias": "auto", P + "clip.max_norm": 1.0, P + "clip.clip_value": 1.0, P + "task.name": "adding"})
    return d


def ensure_defaults(state: MutableMapping[str, Any]) -> None:
    for k, v in defaults().items():
        if k not in state:
            state[k] = v


def load_spec(state: MutableMapping[str, Any], spec: dict[str, Any]) -> None:
    """Fill the form from a spec mapping (a run to clone, a preset's base)."""
    full = parse_spec(spec).to_dict() if not isinstance(spec, JobSpec) else spec.to_dict()
    for k, v in defaults().items():
        state[k] = v
    task = full["task"]
    state[P + "task.name"] = task["name"]
    for k, v in task.items():
        if k != "name":
            state[f"{P}task.{task['name']}.{k}"] = "" if v is None else v
    for k, v in flatten({x: y for x, y in full.items() if x != "task"}).items():
        if v is None:
            continue
        state[P + k] = v
    state[P + "name"] = full.get("name") or ""
    state[P + "init.spectral_radius_on"] = full["init"]["spectral_radius"] is not None
    state[P + "init.forget_bias_on"] = full["init"]["forget_bias"] is not None
    state[P + "init.bias"] = full["init"]["bias"] or "auto"
    for k, default in (("init.spectral_radius", 1.0), ("init.forget_bias", 1.0), ("clip.max_norm", 1.0),
                       ("clip.clip_value", 1.0), ("leaky_slope", 0.01)):
        if state.get(P + k) is None:
            state[P + k] = default
    state[P + "activation"] = full["activation"] or "tanh"


def collect(state: MutableMapping[str, Any]) -> dict[str, Any]:
    """The spec mapping the form describes; fields that do not apply are left out."""
    g = lambda k: state.get(P + k)  # noqa: E731
    task_name = g("task.name")
    task: dict[str, Any] = {"name": task_name}
    for f in TASK_FIELDS.get(task_name, []):
        v = g(f"task.{task_name}.{f}")
        if f == "path" and (task_name == "forecast" and g("task.forecast.series") != "csv" or not v):
            continue
        if f == "perm_seed" and not g("task.digits.permuted"):
            continue
        task[f] = v
    d: dict[str, Any] = {"task": task, "cell": g("cell"), "hidden_size": g("hidden_size"),
                         "num_layers": g("num_layers"), "batch_size": g("batch_size"), "epochs": g("epochs"),
                         "steps_per_epoch": g("steps_per_epoch"), "seed": g("seed"), "device": g("device")}
    if g("name"):
        d["name"] = g("name")
    if d["cell"] == "rnn":
        act = g("activation")
        if act and act != "tanh":
            d["activation"] = act
        if act == "leaky_relu":
            d["leaky_slope"] = g("leaky_slope")
    rec, inp = g("init.recurrent"), g("init.input")
    init: dict[str, Any] = {"recurrent": rec, "input": inp}
    if "normal" in (rec, inp):
        init["std"] = g("init.std")
    if "uniform" in (rec, inp):
        init["bound"] = g("init.bound")
    if "identity" in (rec, inp):
        init["scale"] = g("init.scale")
    if g("init.spectral_radius_on"):
        init["spectral_radius"] = g("init.spectral_radius")
    if d["cell"] == "lstm" and g("init.forget_bias_on"):
        init["forget_bias"] = g("init.forget_bias")
    if g("init.bias") in ("default", "zeros"):
        init["bias"] = g("init.bias")
    d["init"] = init
    mode = g("clip.mode")
    d["clip"] = {"mode": mode}
    if mode == "norm":
        d["clip"]["max_norm"] = g("clip.max_norm")
    elif mode == "value":
        d["clip"]["clip_value"] = g("clip.clip_value")
    opt = {"name": g("optimizer.name"), "lr": g("optimizer.lr"), "weight_decay": g("optimizer.weight_decay")}
    if opt["name"] in ("sgd", "rmsprop"):
        opt["momentum"] = g("optimizer.momentum")
    d["optimizer"] = opt
    d["probe"] = {"every": g("probe.every"), "batch_size": g("probe.batch_size")}
    return d


def validate(d: dict[str, Any], limits: Limits | None = None) -> tuple[JobSpec | None, list[str]]:
    try:
        return parse_spec(d, limits), []
    except SpecError as e:
        return None, list(e.errors)


def field_of(error: str) -> str:
    """The dotted field an error message names ('clip.max_norm is required …' → 'clip.max_norm')."""
    msg = error.split("] ", 1)[-1] if error.startswith("[") else error
    head = msg.split(":", 1)[0].split(" ", 1)[0]
    return head.strip()


class _Errors:
    """Errors routed to fields; the ones no field claimed are shown by ``rest``. A sweep repeats a
    message for every grid point ("[cell='rnn'] …"); identical messages are shown once, with a count."""

    def __init__(self, errors: list[str]):
        grouped: dict[str, list[str]] = {}
        for e in errors:
            bare = e.split("] ", 1)[-1] if e.startswith("[") else e
            grouped.setdefault(bare, []).append(e)
        self.errors = [(v[0] if len(v) == 1 else f"{k} (in {len(v)} grid points)") for k, v in grouped.items()]
        self.shown: set[int] = set()

    def at(self, *paths: str) -> None:
        for i, e in enumerate(self.errors):
            if i not in self.shown and field_of(e) in paths:
                self.shown.add(i)
                st.error(plain(e), icon=":material/error:")

    def rest(self) -> None:
        for i, e in enumerate(self.errors):
            if i not in self.shown:
                st.error(plain(e), icon=":material/error:")


def _desc(model: type, name: str) -> str | None:
    return model.model_fields[name].description


def render(errors: list[str]) -> None:
    """Draw the form (values come from session state) with each error under its field."""
    ss, E = st.session_state, _Errors(errors)
    c1, c2 = st.columns(2)
    with c1:
        st.text_input("Name (optional)", key=P + "name", max_chars=200,
                      help="A label shown in tables; not part of the spec hash.")
        st.selectbox("Task", TASK_NAMES, key=P + "task.name", help=TASK_HELP[ss[P + "task.name"]])
        E.at("task", "task.name")
        _task_fields(ss[P + "task.name"], E)
    with c2:
        st.selectbox("Cell", ["rnn", "lstm", "gru"], key=P + "cell",
                     help="rnn: vanilla h_t = φ(W h_{t−1} + U x_t + b); lstm and gru have gates (fixed activations).")
        if ss[P + "cell"] == "rnn":
            st.selectbox("Activation φ", ACTIVATIONS, key=P + "activation",
                         help="Vanilla cell only. γ = sup φ′: 1/4 sigmoid, 1 tanh and ReLU; "
                              "σ_max(W) < 1/γ guarantees vanishing.")
            if ss[P + "activation"] == "leaky_relu":
                st.number_input("Leaky slope", key=P + "leaky_slope", min_value=0.0001, max_value=0.9999, step=0.01,
                                format="%.4f", help="Slope for z < 0 (leaky_relu only).")
        E.at("cell", "activation", "leaky_slope")
        a, b = st.columns(2)
        a.number_input("Hidden size", key=P + "hidden_size", min_value=1, step=16, help="Units per layer (H).")
        b.number_input("Layers", key=P + "num_layers", min_value=1, max_value=8,
                       help="Stacked recurrent layers (depth).")
        E.at("hidden_size", "num_layers", "hidden_size·steps·batch_size·num_layers",
             "hidden_size·steps·probe.batch_size·num_layers")

    st.markdown("**Initialization**")
    a, b, c = st.columns(3)
    a.selectbox("Recurrent W_hh", INITS, key=P + "init.recurrent",
                help=InitSpec.__doc__.split(".")[0] + ". 'kaiming' is He init; 'identity' is IRNN.")
    b.selectbox("Input W_ih", INITS, key=P + "init.input", help="Initialization of the input weights.")
    c.selectbox("Biases", ["auto", "default", "zeros"], key=P + "init.bias", help=_desc(InitSpec, "bias"))
    chosen = (ss[P + "init.recurrent"], ss[P + "init.input"])
    a, b, c = st.columns(3)
    if "normal" in chosen:
        a.number_input("std (normal)", key=P + "init.std", min_value=1e-8, format="%g", help=_desc(InitSpec, "std"))
    if "uniform" in chosen:
        b.number_input("bound (uniform)", key=P + "init.bound", min_value=1e-8, format="%g",
                       help=_desc(InitSpec, "bound"))
    if "identity" in chosen:
        c.number_input("scale (identity)", key=P + "init.scale", min_value=1e-8, format="%g",
                       help=_desc(InitSpec, "scale"))
    a, b = st.columns(2)
    a.checkbox("Rescale W_hh to a spectral radius", key=P + "init.spectral_radius_on",
               help=_desc(InitSpec, "spectral_radius"))
    if ss[P + "init.spectral_radius_on"]:
        a.number_input("spectral radius ρ", key=P + "init.spectral_radius", min_value=1e-6, format="%g")
    if ss[P + "cell"] == "lstm":
        b.checkbox("Set the forget-gate bias", key=P + "init.forget_bias_on", help=_desc(InitSpec, "forget_bias"))
        if ss[P + "init.forget_bias_on"]:
            b.number_input("forget bias", key=P + "init.forget_bias", format="%g")
    E.at("init", "init.recurrent", "init.input", "init.std", "init.bound", "init.scale", "init.spectral_radius",
         "init.forget_bias", "init.bias")

    st.markdown("**Training**")
    a, b, c, d = st.columns(4)
    a.selectbox("Optimizer", ["adam", "sgd", "rmsprop"], key=P + "optimizer.name")
    b.number_input("Learning rate", key=P + "optimizer.lr", min_value=1e-8, max_value=10.0, format="%g", step=1e-4)
    if ss[P + "optimizer.name"] in ("sgd", "rmsprop"):
        c.number_input("Momentum", key=P + "optimizer.momentum", min_value=0.0, max_value=0.999, step=0.1,
                       help="sgd and rmsprop only")
    d.number_input("Weight decay", key=P + "optimizer.weight_decay", min_value=0.0, format="%g")
    E.at("optimizer", "optimizer.name", "optimizer.lr", "optimizer.momentum", "optimizer.weight_decay")
    a, b, c, d = st.columns(4)
    a.number_input("Batch size", key=P + "batch_size", min_value=1, step=16)
    b.number_input("Epochs", key=P + "epochs", min_value=1, help="Epoch 0 is recorded at initialization, then 1..N.")
    c.number_input("Steps per epoch", key=P + "steps_per_epoch", min_value=1, step=10)
    d.number_input("Seed", key=P + "seed", min_value=0, max_value=2**31 - 1,
                   help="Same spec + seed ⇒ identical records on CPU.")
    E.at("batch_size", "epochs", "steps_per_epoch", "seed")

    st.markdown("**Clipping, probe and device**")
    a, b, c, d, e = st.columns(5)
    a.selectbox("Clipping", ["none", "norm", "value"], key=P + "clip.mode", help=ClipSpec.__doc__)
    if ss[P + "clip.mode"] == "norm":
        b.number_input("max norm θ", key=P + "clip.max_norm", min_value=1e-8, format="%g",
                       help="Rescale the global gradient to θ when larger [P13 Alg. 1].")
    elif ss[P + "clip.mode"] == "value":
        b.number_input("clip value", key=P + "clip.clip_value", min_value=1e-8, format="%g",
                       help="Clamp each gradient element to ±value.")
    c.number_input("Probe every (epochs)", key=P + "probe.every", min_value=1,
                   help="The per-timestep ‖∂L/∂h_t‖ probe; always at epoch 0 and the last epoch.")
    d.number_input("Probe batch", key=P + "probe.batch_size", min_value=1, help="Examples in the fixed probe batch.")
    e.selectbox("Device", ["auto", "cpu", "cuda"], key=P + "device", help="auto: the cpu queue; cuda: the gpu queue.")
    E.at("clip", "clip.mode", "clip.max_norm", "clip.clip_value", "probe", "probe.every", "probe.batch_size", "device")
    E.rest()


def _task_fields(task: str, E: _Errors) -> None:
    ss, k = st.session_state, f"{P}task.{task}."
    if task in ("adding", "temporal_order"):
        opts = ["a16", "p13"] if task == "adding" else ["p13"]
        st.selectbox("Variant", opts, key=k + "variant", help=TASK_HELP[task])
    if task == "forecast":
        st.selectbox("Series", ["sine", "mackey_glass", "csv"], key=k + "series")
    if task == "digits":
        st.checkbox("Permuted pixels", key=k + "permuted", help="One fixed permutation of the 64 pixels.")
        if ss[k + "permuted"]:
            st.number_input("Permutation seed", key=k + "perm_seed", min_value=0)
        st.caption("T = 64 (one pixel per step)")
    else:
        label = "Delay T" if task == "copy" else "Sequence length T"
        st.number_input(label, key=k + "seq_len", min_value=1, step=10,
                        help="The number of steps gradients must cross.")
    if task == "copy":
        st.number_input("Symbols", key=k + "n_symbols", min_value=2, max_value=64)
        st.number_input("Symbols to copy", key=k + "n_copy", min_value=1, max_value=100)
    if task == "charlm" or (task == "forecast" and ss[f"{P}task.forecast.series"] == "csv"):
        st.text_input("Data file path", key=k + "path", help="A path readable by the worker.")
    E.at(*[f"task.{f}" for f in TASK_FIELDS[task]], "task.seq_len")
