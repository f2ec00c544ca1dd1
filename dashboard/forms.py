"""The job-spec form: every JobSpec field as a widget with help text, fields that do not apply
hidden, and SpecError messages shown next to the field they name.

The form is read from the spec model (rnnlab.spec): the choices of a selectbox are the field's
``Literal`` values, the defaults are the model's defaults, the help text is the field's description
with its allowed range, and the fields of each task are the fields of its model. A field added to
the spec appears in the form (drawn under "Other fields" until it is given a place) and in
``collect`` with nothing copied by hand. What stays here is what the spec does not say: the layout,
the labels, and which fields apply when (``APPLIES``, ``TASK_APPLIES``).

Number inputs have no minimum or maximum: the browser would turn an out-of-range value red and
keep sending the previous one. Whatever is typed is sent, checked by rnnlab.spec.parse_spec, and
the error (naming the field and the allowed range) is shown under the field; submit stays disabled.

Widget values live in st.session_state under ``f.<dotted spec path>`` (a task's fields under
``f.task.<task>.<field>``); ``collect`` turns them into a spec mapping (applying the visibility
rules), ``validate`` runs parse_spec on it, and ``render`` draws the widgets with each error under
its field.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, MutableMapping
from typing import Any, Literal, Union

import streamlit as st
from pydantic import BaseModel

from dashboard.components import flatten, plain
from rnnlab.spec import ClipSpec, InitSpec, JobSpec, Limits, ProbeSpec, SpecError, parse_spec

P = "f."

# ---------------------------------------------------------------------------------------------
# What the spec model says: choices, defaults, ranges, tasks
# ---------------------------------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    """The annotation without Optional (``X | None``) and Annotated."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _unwrap(rest[0]) if len(rest) == 1 else tp
    return tp


def choices(model: type[BaseModel], name: str) -> list[Any]:
    """The values a ``Literal`` field allows, in the spec's order."""
    tp = _unwrap(model.model_fields[name].annotation)
    if typing.get_origin(tp) is not Literal:
        raise TypeError(f"{model.__name__}.{name} is not a Literal field")
    return list(typing.get_args(tp))


def kind(model: type[BaseModel], name: str) -> str:
    """'choice', 'bool', 'number', 'text' or 'model' (a nested spec)."""
    tp = _unwrap(model.model_fields[name].annotation)
    if typing.get_origin(tp) is Literal:
        return "choice"
    if tp is bool:
        return "bool"
    if tp in (int, float):
        return "number"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "model"
    return "text"


def default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def _num(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def allowed(model: type[BaseModel], name: str) -> str:
    """The range a number field allows, from its constraints: '≥ 1', '> 0 and ≤ 10' ('' if none)."""
    parts = []
    for m in model.model_fields[name].metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {_num(v)}")
    return " and ".join(parts)


def _task_models() -> dict[str, type[BaseModel]]:
    """{task name: its model}, from the members of JobSpec.task's tagged union."""
    members = typing.get_args(_unwrap(JobSpec.model_fields["task"].annotation))
    return {default(m, "name"): m for m in members}


TASKS = _task_models()


def task_fields(task: str) -> list[str]:
    """A task's fields besides its name, in the model's order."""
    return [f for f in TASKS[task].model_fields if f != "name"]


def _leaves(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[type[BaseModel], str]]:
    """{dotted path: (model, field)} of every scalar field of a spec model (the task excepted)."""
    out: dict[str, tuple[type[BaseModel], str]] = {}
    for name, f in model.model_fields.items():
        if prefix == "" and name == "task":
            continue
        if kind(model, name) == "model":
            out.update(_leaves(_unwrap(f.annotation), f"{prefix}{name}."))
        else:
            out[prefix + name] = (model, name)
    return out


LEAVES = _leaves(JobSpec)

# Fields whose spec default is None (not set) get this value in the form when they are switched on.
WHEN_ON = {"init.spectral_radius": 1.0, "init.forget_bias": 1.0, "clip.max_norm": 1.0, "clip.clip_value": 1.0,
           "leaky_slope": JobSpec().slope}

# The operator's limit (rnnlab.spec.Limits) behind a field, shown in its help.
LIMIT_OF = {"hidden_size": "max_hidden_size", "batch_size": "max_batch_size", "probe.batch_size": "max_batch_size",
            "epochs": "max_epochs", "steps_per_epoch": "max_steps_per_epoch", "task.seq_len": "max_seq_len"}

Getter = Callable[[str], Any]

# When a field goes into the spec; any other field goes in whenever the form holds a value for it.
APPLIES: dict[str, Callable[[Getter], bool]] = {
    "name": lambda g: bool(g("name")),
    "activation": lambda g: g("cell") == "rnn" and g("activation") not in (None, JobSpec().act),
    "leaky_slope": lambda g: g("cell") == "rnn" and g("activation") == "leaky_relu",
    "init.std": lambda g: "normal" in (g("init.recurrent"), g("init.input")),
    "init.bound": lambda g: "uniform" in (g("init.recurrent"), g("init.input")),
    "init.scale": lambda g: "identity" in (g("init.recurrent"), g("init.input")),
    "init.spectral_radius": lambda g: bool(g("init.spectral_radius_on")),
    "init.forget_bias": lambda g: g("cell") == "lstm" and bool(g("init.forget_bias_on")),
    "init.bias": lambda g: g("init.bias") in choices(InitSpec, "bias"),
    "clip.max_norm": lambda g: g("clip.mode") == "norm",
    "clip.clip_value": lambda g: g("clip.mode") == "value",
    "optimizer.momentum": lambda g: g("optimizer.name") in ("sgd", "rmsprop"),
}
TASK_APPLIES: dict[tuple[str, str], Callable[[Getter], bool]] = {
    ("digits", "perm_seed"): lambda g: bool(g("task.digits.permuted")),
    ("forecast", "path"): lambda g: g("task.forecast.series") == "csv",
}
TASK_LABELS = {"variant": "Variant", "seq_len": "Sequence length T", "n_symbols": "Symbols",
               "n_copy": "Symbols to copy", "permuted": "Permuted pixels", "perm_seed": "Permutation seed",
               "path": "Data file path", "series": "Series"}


def applies(path: str, g: Getter) -> bool:
    rule = APPLIES.get(path)
    return rule(g) if rule else g(path) is not None


def task_applies(task: str, name: str, g: Getter) -> bool:
    rule = TASK_APPLIES.get((task, name))
    return rule(g) if rule else True


# ---------------------------------------------------------------------------------------------
# State ↔ spec mapping
# ---------------------------------------------------------------------------------------------


def defaults() -> dict[str, Any]:
    """Widget defaults: the JobSpec defaults plus the form's own switches."""
    d = {P + path: default(model, name) for path, (model, name) in LEAVES.items()}
    for task, model in TASKS.items():
        for k in task_fields(task):
            v = default(model, k)
            d[f"{P}task.{task}.{k}"] = "" if v is None else v
    d.update({P + k: v for k, v in WHEN_ON.items()})
    d.update({P + "name": "", P + "activation": JobSpec().act, P + "init.spectral_radius_on": False,
              P + "init.forget_bias_on": False, P + "init.bias": "auto",
              P + "task.name": default(JobSpec, "task").name})
    return d


def ensure_defaults(state: MutableMapping[str, Any]) -> None:
    for k, v in defaults().items():
        if k not in state:
            state[k] = v


def load_spec(state: MutableMapping[str, Any], spec: dict[str, Any] | JobSpec) -> None:
    """Fill the form from a spec mapping (a run to clone, a preset's base)."""
    full = spec.to_dict() if isinstance(spec, JobSpec) else parse_spec(spec).to_dict()
    state.update(defaults())
    task = full.pop("task")
    state[P + "task.name"] = task["name"]
    for k, v in task.items():
        if k != "name":
            state[f"{P}task.{task['name']}.{k}"] = "" if v is None else v
    state.update({P + k: v for k, v in flatten(full).items() if v is not None})
    state[P + "init.spectral_radius_on"] = full["init"]["spectral_radius"] is not None
    state[P + "init.forget_bias_on"] = full["init"]["forget_bias"] is not None


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for k in parents:
        d = d.setdefault(k, {})
    d[last] = value


def _collect_task(g: Getter) -> dict[str, Any]:
    name = g("task.name")
    task: dict[str, Any] = {"name": name}
    for f in task_fields(name) if name in TASKS else []:
        v = g(f"task.{name}.{f}")
        if v not in (None, "") and task_applies(name, f, g):
            task[f] = v
    return task


def collect(state: MutableMapping[str, Any]) -> dict[str, Any]:
    """The spec mapping the form describes; fields that do not apply are left out."""
    def g(k: str) -> Any:
        return state.get(P + k)

    d: dict[str, Any] = {"task": _collect_task(g)}
    for path in LEAVES:
        if applies(path, g):
            _set(d, path, g(path))
    return d


def validate(d: dict[str, Any], limits: Limits | None = None) -> tuple[JobSpec | None, list[str]]:
    try:
        return parse_spec(d, limits), []
    except SpecError as e:
        return None, list(e.errors)


def bare(error: str) -> str:
    """An error without the grid point a sweep puts in front of it ('[cell='rnn'] …')."""
    return error.split("] ", 1)[-1] if error.startswith("[") else error


def field_of(error: str) -> str:
    """The dotted field an error message names ('clip.max_norm is required …' → 'clip.max_norm')."""
    head = bare(error).split(":", 1)[0].split(" ", 1)[0]
    return head.strip()


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


class _Errors:
    """Errors routed to fields; the ones no field claimed are shown by ``rest``. A sweep repeats a
    message for every grid point ("[cell='rnn'] …"); identical messages are shown once, with a count."""

    def __init__(self, errors: list[str]):
        grouped: dict[str, list[str]] = {}
        for e in errors:
            grouped.setdefault(bare(e), []).append(e)
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


def help_text(model: type[BaseModel], name: str, path: str, limits: Limits, text: str | None = None) -> str:
    """The field's help: its description, then its name and allowed range, with the operator's limit."""
    desc = text or model.model_fields[name].description or ""
    rng = allowed(model, name) if kind(model, name) == "number" else ""
    cap = getattr(limits, LIMIT_OF[path]) if path in LIMIT_OF else None
    if cap is not None:
        rng = f"{rng + ' and ' if rng else ''}≤ {cap:,} (the operator's limit)"
    if kind(model, name) == "choice":
        rng = "one of " + ", ".join(map(str, choices(model, name)))
    line = f"Allowed {path}: {rng}." if rng else ""
    return "  \n".join(p for p in (desc, line) if p)


class _Form:
    """Draws fields from the spec model, each with its errors right under it, and remembers which
    spec paths it drew (the rest go under "Other fields")."""

    def __init__(self, errors: list[str], limits: Limits):
        self.E, self.limits, self.drawn = _Errors(errors), limits, set()

    def field(self, where: Any, path: str, label: str, *, model: type[BaseModel] | None = None,
              name: str | None = None, key: str | None = None, help: str | None = None, **kw: Any) -> None:
        """One widget for a spec field: a selectbox for a Literal, a checkbox for a bool, a number input
        with no bounds for a number, a text input otherwise; then the errors that name ``path``."""
        model, name = (model, name) if model else LEAVES[path]
        key = key or P + path
        self.drawn.add(path)
        with where:
            k, h = kind(model, name), help_text(model, name, path, self.limits, help)
            if k == "choice":
                st.selectbox(label, choices(model, name), key=key, help=h)
            elif k == "bool":
                st.checkbox(label, key=key, help=h)
            elif k == "number":
                is_float = _unwrap(model.model_fields[name].annotation) is float
                kw["step"] = kw.get("step") or (None if is_float else 1)   # the type when the value is None
                st.number_input(label, key=key, format="%g" if is_float else None, help=h, **kw)
            else:
                st.text_input(label, key=key, max_chars=kw.pop("max_chars", 1000), help=h)
            self.E.at(path)


def render(errors: list[str], limits: Limits | None = None) -> None:
    """Draw the form (values come from session state) with each error under its field."""
    F = _Form(errors, limits or Limits())
    c1, c2 = st.columns(2)
    with c1:
        F.field(st.container(), "name", "Name (optional)", max_chars=200,
                help="A label shown in tables; not part of the spec hash.")
        _task(F)
    with c2:
        _model(F)
    st.markdown("**Initialization**")
    _init(F)
    st.markdown("**Training**")
    _training(F)
    st.markdown("**Clipping, probe and device**")
    _clip_probe_device(F)
    _others(F)
    F.E.rest()


def _model(F: _Form) -> None:
    ss = st.session_state
    F.field(st.container(), "cell", "Cell",
            help="rnn: vanilla h_t = φ(W h_{t−1} + U x_t + b); lstm and gru have gates (fixed activations).")
    if ss[P + "cell"] == "rnn":
        F.field(st.container(), "activation", "Activation φ",
                help="Vanilla cell only. γ = sup φ′: 1/4 sigmoid, 1 tanh and ReLU; σ_max(W) < 1/γ guarantees "
                     "vanishing.")
        if ss[P + "activation"] == "leaky_relu":
            F.field(st.container(), "leaky_slope", "Leaky slope", step=0.01,
                    help="Slope for z < 0 (leaky_relu only).")
    F.drawn.update({"activation", "leaky_slope"})
    a, b = st.columns(2)
    F.field(a, "hidden_size", "Hidden size", step=16, help="Units per layer (H).")
    F.field(b, "num_layers", "Layers", help="Stacked recurrent layers (depth).")
    F.E.at("hidden_size·steps·batch_size·num_layers", "hidden_size·steps·probe.batch_size·num_layers")


def _task(F: _Form) -> None:
    ss = st.session_state
    task = ss[P + "task.name"]
    st.selectbox("Task", list(TASKS), key=P + "task.name", help=TASKS[task].__doc__)
    F.E.at("task", "task.name")
    model, g = TASKS[task], ss.get
    for f in task_fields(task):
        if not task_applies(task, f, lambda k: g(P + k)):
            continue
        if kind(model, f) == "choice" and len(choices(model, f)) == 1:
            st.caption(f"{TASK_LABELS.get(f, f)}: {choices(model, f)[0]} (fixed for this task)")
            continue
        label = "Delay T" if (task, f) == ("copy", "seq_len") else TASK_LABELS.get(f, f.replace("_", " "))
        F.field(st.container(), f"task.{f}", label, model=model, name=f, key=f"{P}task.{task}.{f}",
                step=10 if f == "seq_len" else None)
    F.drawn.add("task")


def _init(F: _Form) -> None:
    ss = st.session_state
    a, b, c = st.columns(3)
    F.field(a, "init.recurrent", "Recurrent W_hh",
            help=InitSpec.__doc__.split(".")[0] + ". 'kaiming' is He init; 'identity' is IRNN.")
    F.field(b, "init.input", "Input W_ih", help="Initialization of the input weights.")
    with c:   # 'auto' is the form's name for the spec's None
        st.selectbox("Biases", ["auto", *choices(InitSpec, "bias")], key=P + "init.bias",
                     help=InitSpec.model_fields["bias"].description)
        F.E.at("init.bias")
    F.drawn.add("init.bias")
    g = lambda k: ss.get(P + k)  # noqa: E731
    for col, path, label in ((a, "init.std", "std (normal)"), (b, "init.bound", "bound (uniform)"),
                             (c, "init.scale", "scale (identity)")):
        if applies(path, g):
            F.field(col, path, label)
    a, b = st.columns(2)
    a.checkbox("Rescale W_hh to a spectral radius", key=P + "init.spectral_radius_on",
               help=InitSpec.model_fields["spectral_radius"].description)
    if ss[P + "init.spectral_radius_on"]:
        F.field(a, "init.spectral_radius", "spectral radius ρ")
    if ss[P + "cell"] == "lstm":
        b.checkbox("Set the forget-gate bias", key=P + "init.forget_bias_on",
                   help=InitSpec.model_fields["forget_bias"].description)
        if ss[P + "init.forget_bias_on"]:
            F.field(b, "init.forget_bias", "forget bias")
    F.drawn.update({"init.spectral_radius", "init.forget_bias", "init.std", "init.bound", "init.scale"})
    F.E.at("init")


def _training(F: _Form) -> None:
    ss = st.session_state
    a, b, c, d = st.columns(4)
    F.field(a, "optimizer.name", "Optimizer")
    F.field(b, "optimizer.lr", "Learning rate", step=1e-4)
    if ss[P + "optimizer.name"] in ("sgd", "rmsprop"):
        F.field(c, "optimizer.momentum", "Momentum", step=0.1, help="sgd and rmsprop only")
    F.drawn.add("optimizer.momentum")
    F.field(d, "optimizer.weight_decay", "Weight decay")
    F.E.at("optimizer")
    a, b, c, d = st.columns(4)
    F.field(a, "batch_size", "Batch size", step=16)
    F.field(b, "epochs", "Epochs", help="Epoch 0 is recorded at initialization, then 1..N.")
    F.field(c, "steps_per_epoch", "Steps per epoch", step=10)
    F.field(d, "seed", "Seed", help="Same spec + seed ⇒ identical records on CPU.")


def _clip_probe_device(F: _Form) -> None:
    ss = st.session_state
    a, b, c, d, e = st.columns(5)
    F.field(a, "clip.mode", "Clipping", help=ClipSpec.__doc__)
    mode = ss[P + "clip.mode"]
    if mode == "norm":
        F.field(b, "clip.max_norm", "max norm θ", help="Rescale the global gradient to θ when larger [P13 Alg. 1].")
    elif mode == "value":
        F.field(b, "clip.clip_value", "clip value", help="Clamp each gradient element to ±value.")
    F.drawn.update({"clip.max_norm", "clip.clip_value"})
    F.field(c, "probe.every", "Probe every (epochs)",
            help=ProbeSpec.__doc__.split(" (")[0] + "; always at epoch 0 and the last epoch.")
    F.field(d, "probe.batch_size", "Probe batch", help="Examples in the fixed probe batch.")
    F.field(e, "device", "Device", help="auto: the cpu queue; cuda: the gpu queue.")
    F.field(c, "probe.budget", "Probe time budget (optional)", step=0.01,
            help=ProbeSpec.model_fields["budget"].description + "; empty: probe every `probe.every` epochs.")
    F.E.at("clip", "probe")


def _others(F: _Form) -> None:
    """Spec fields the layout above has no place for yet (a field just added to the spec)."""
    rest = [p for p in LEAVES if p not in F.drawn]
    if rest:
        st.markdown("**Other fields**")
        for path in rest:
            F.field(st.container(), path, path)

