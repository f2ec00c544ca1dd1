"""The job spec: one validated, torch-free definition of a training job (and of a sweep of jobs).

Every part of rnnlab uses these classes: the CLI and the dashboard build them, the database stores
them as JSON (with ``SPEC_VERSION``), the worker re-reads them, the engine trains from them.
``docs/spec.md`` documents every field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import reprlib
import stat
import types
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from rnnlab.records import run_label

SPEC_VERSION = 1

Cell = Literal["rnn", "lstm", "gru"]
Activation = Literal["tanh", "sigmoid", "relu", "leaky_relu", "prelu"]
InitName = Literal[
    "default", "zeros", "normal", "uniform", "xavier_uniform", "xavier_normal",
    "kaiming", "orthogonal", "identity",
]
Device = Literal["auto", "cpu", "cuda"]


class _Strict(BaseModel):
    """Base: unknown keys are errors, NaN/inf are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic reads true as 1 in int and float fields, and YAML reads yes/no/on/off as booleans
        if isinstance(data, dict):
            for name, f in cls.model_fields.items():
                if name in data and _bool_in_number(data[name], f.annotation):
                    raise PydanticCustomError("bool_number", "{field}: got {value}; a boolean (true/false, "
                                              "yes/no, on/off) is not a number", {"field": name,
                                                                                   "value": repr(data[name])})
        return data


def _numeric(tp: Any) -> bool:
    """Whether a type annotation takes numbers and not booleans (int, float, their optional forms)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _numeric(args[0])
    if origin in (Union, types.UnionType):
        return bool not in args and any(_numeric(a) for a in args)
    return tp in (int, float)


def _bool_in_number(v: Any, tp: Any) -> bool:
    if isinstance(v, bool):
        return _numeric(tp)
    if isinstance(v, list) and typing.get_origin(tp) is list:
        return any(_bool_in_number(x, typing.get_args(tp)[0]) for x in v)
    return False


# text that reads differently from what it stores: C0/C1 controls (NUL, ESC, newline …), bidi overrides
# and isolates (U+202A-U+202E, U+2066-U+2069), marks (U+200E, U+200F, U+061C), line/paragraph separators
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029}


def check_text(field: str, value: str | None, allow: str = "") -> str | None:
    """Refuse control, NUL and bidi characters in a name, tag or path (they hide or reorder text in
    tables, terminals and logs); returns the value. ``allow``: characters let through all the same
    (notes keep their newlines and tabs)."""
    if value is None:
        return value
    for i, ch in enumerate(value):
        if ch in allow:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs") or ord(ch) in _BIDI:
            raise ValueError(f"{field}: got {reprlib.repr(value)}; character {i + 1} is U+{ord(ch):04X} "
                             f"({unicodedata.name(ch, 'a control character')}): control, NUL and bidi "
                             f"characters are not allowed")
    return value


# runs.owner and sweeps.owner are String(100): a longer owner is refused before anything is written (SQLite
# would store it whole, PostgreSQL would refuse the insert)
MAX_OWNER_CHARS = 100


def check_owner(owner: str | None) -> list[str]:
    """The owner recorded on runs: None (no owner), or 1 to MAX_OWNER_CHARS characters without control,
    NUL or bidi characters (check_text); the problems, naming ``owner``, or []."""
    if owner is None:
        return []
    if not isinstance(owner, str) or not owner.strip() or len(owner) > MAX_OWNER_CHARS:
        n = f" (this one has {len(owner):,})" if isinstance(owner, str) and owner.strip() else ""
        return [f"owner: got {reprlib.repr(owner)}; an owner is 1 to {MAX_OWNER_CHARS} characters{n}"]
    try:
        check_text("owner", owner)
    except ValueError as e:
        return [str(e)]
    return []


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------

class AddingTask(_Strict):
    """Adding problem. ``a16``: two marked U[0,1] values, one per half, target their sum (baseline
    MSE 1/6). ``p13``: length T..1.1T, markers in the first 10% and in [10%, 50%), target the mean
    (baseline MSE 1/24, an answer is wrong if its squared error > 0.04)."""

    name: Literal["adding"] = "adding"
    variant: Literal["a16", "p13"] = "a16"
    seq_len: int = Field(100, ge=2, description="sequence length T")

    @model_validator(mode="after")
    def _p13_needs_room(self) -> AddingTask:
        # P13 places marker 1 in the first 10% and marker 2 in [10%, 50%): below 10 steps they collide
        if self.variant == "p13" and self.seq_len < 10:
            raise ValueError(f"task.seq_len: got {self.seq_len}; the p13 variant needs at least 10 steps")
        return self


class CopyTask(_Strict):
    """Copy memory [A16]: remember ``n_copy`` symbols over ``seq_len`` blanks (length T + 2·n_copy).
    Memoryless baseline cross-entropy n_copy·ln(n_symbols)/(T + 2·n_copy)."""

    name: Literal["copy"] = "copy"
    seq_len: int = Field(50, ge=1, description="delay T between the symbols and the delimiter")
    n_symbols: int = Field(8, ge=2, le=64)
    n_copy: int = Field(10, ge=1, le=100)


class TemporalOrderTask(_Strict):
    """Temporal order [P13 code]: classify the order of two symbols (A/B) placed in [0.1L, 0.2L) and
    [0.5L, 0.6L) among distractors; 4 classes, chance 25%."""

    name: Literal["temporal_order"] = "temporal_order"
    variant: Literal["p13"] = "p13"
    seq_len: int = Field(50, ge=10)


class DigitsTask(_Strict):
    """Sequential digits: scikit-learn's bundled 8×8 digits, one pixel per step (T = 64), with an
    optional fixed permutation of the pixels."""

    name: Literal["digits"] = "digits"
    permuted: bool = False
    perm_seed: int = Field(0, ge=0)
    seq_len: Literal[64] = 64


# The data a task reads from ``task.path`` (charlm's text, forecast's CSV). The readers in models/tasks
# check the file's size with os.stat before reading it (and read at most one byte more), and charlm
# checks its number of distinct characters before any one-hot tensor is built; docs/spec.md, "Data files".
MAX_DATA_FILE_BYTES = 100_000_000   # 100 MB: a text of this size takes about 1 GB while it is read
MAX_CHARLM_VOCAB = 1024   # distinct characters of a charlm text: the one-hot width of its inputs and outputs
BUNDLED_CHARLM_VOCAB = 66   # distinct characters of the bundled sonnets (a test reads the text to check it)
MAX_PATH_CHARS = 4096   # task.path's length in characters (Linux's PATH_MAX)


class CharLMTask(_Strict):
    """Character-level language model on a plain-text file (``path``; None = the bundled text)."""

    name: Literal["charlm"] = "charlm"
    path: str | None = Field(None, max_length=MAX_PATH_CHARS)
    seq_len: int = Field(100, ge=2)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, v: str | None) -> str | None:
        return check_text("task.path", v)


class ForecastTask(_Strict):
    """One-step-ahead forecasting of a generated series (sine mixture, Mackey-Glass τ = 17) or of a
    user's CSV file of series (``path``, one series per numeric column)."""

    name: Literal["forecast"] = "forecast"
    series: Literal["sine", "mackey_glass", "csv"] = "sine"
    path: str | None = Field(None, max_length=MAX_PATH_CHARS)
    seq_len: int = Field(100, ge=2)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, v: str | None) -> str | None:
        return check_text("task.path", v)

    @model_validator(mode="after")
    def _csv_needs_path(self) -> ForecastTask:
        if self.series == "csv" and not self.path:
            raise ValueError("task.path is required when task.series is 'csv'")
        if self.series != "csv" and self.path:
            raise ValueError(f"task.path applies only to task.series 'csv', not '{self.series}'")
        return self


TaskSpec = Annotated[
    AddingTask | CopyTask | TemporalOrderTask | DigitsTask | CharLMTask | ForecastTask,
    Field(discriminator="name"),
]
TASK_NAMES = ("adding", "copy", "temporal_order", "digits", "charlm", "forecast")
# the tasks whose metric baseline (RunInfo.baseline_metric) is measured on the run's held-out set, which
# is drawn with the run's seed: forecast's persistence MSE. The others' is analytic or fixed by the data
# (digits' majority class on a split that does not depend on the seed); tests/models check it.
SEEDED_METRIC_BASELINE = ("forecast",)


# ---------------------------------------------------------------------------------------------
# Model, initialization, training
# ---------------------------------------------------------------------------------------------

class InitSpec(_Strict):
    """Weight initialization. ``recurrent`` is for W_hh, ``input`` for W_ih; gated cells are
    initialized per gate block. A bare string (``init: orthogonal``) sets both."""

    recurrent: InitName = "default"
    input: InitName = "default"
    std: float = Field(0.01, gt=0, description="std for 'normal'")
    bound: float = Field(0.1, gt=0, description="bound for 'uniform': U(-bound, bound)")
    scale: float = Field(1.0, gt=0, description="scale for 'identity' (IRNN): W_hh = scale·I")
    spectral_radius: float | None = Field(
        None, gt=0, description="rescale each W_hh block exactly to this spectral radius"
    )
    forget_bias: float | None = Field(
        None, description="LSTM forget-gate bias (total of b_ih + b_hh); None leaves it as initialized"
    )
    bias: Literal["default", "zeros"] | None = Field(
        None, description="None: PyTorch's default when both inits are 'default', otherwise zeros"
    )

    @model_validator(mode="after")
    def _radius_needs_nonzero(self) -> InitSpec:
        if self.spectral_radius is not None and self.recurrent == "zeros":
            raise ValueError(
                "init.spectral_radius cannot rescale init.recurrent 'zeros' (its spectral radius is 0)"
            )
        return self


class ClipSpec(_Strict):
    """Gradient clipping: ``norm`` rescales the global gradient to ``max_norm`` when it is larger
    [P13 Alg. 1]; ``value`` clamps each element to ±``clip_value``."""

    mode: Literal["none", "norm", "value"] = "none"
    max_norm: float | None = Field(None, gt=0)
    clip_value: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _params_match_mode(self) -> ClipSpec:
        if self.mode == "norm" and self.max_norm is None:
            raise ValueError("clip.max_norm is required when clip.mode is 'norm'")
        if self.mode == "value" and self.clip_value is None:
            raise ValueError("clip.clip_value is required when clip.mode is 'value'")
        if self.mode != "norm" and self.max_norm is not None:
            raise ValueError(f"clip.max_norm applies only to clip.mode 'norm', not '{self.mode}'")
        if self.mode != "value" and self.clip_value is not None:
            raise ValueError(f"clip.clip_value applies only to clip.mode 'value', not '{self.mode}'")
        return self


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd and rmsprop only")
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _momentum_applies(self) -> OptimizerSpec:
        if self.name == "adam" and self.momentum != 0.0:
            raise ValueError("optimizer.momentum applies only to optimizer.name 'sgd' or 'rmsprop', not 'adam'")
        return self


class ProbeSpec(_Strict):
    """The exact per-timestep diagnostics run on a fixed probe batch every ``every`` epochs
    (and always at epoch 0 and at the last epoch), or, with ``budget``, in the epochs the engine
    picks so that the diagnostics take at most that fraction of the training time."""

    every: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    budget: float | None = Field(
        None, ge=0.001, le=1.0,
        description="fraction of training time the diagnostics may take; the engine picks the probed epochs")

    @model_validator(mode="after")
    def _budget_or_every(self) -> ProbeSpec:
        if self.budget is not None and self.every != 1:
            raise ValueError(f"probe.budget and probe.every exclude each other: with a budget the engine picks "
                             f"the probed epochs; remove probe.every (got every {self.every}) or probe.budget")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_budget(self, handler: Any) -> Any:
        # no budget is written as no key, so every spec without one keeps its spec hash and legacy hash
        d = handler(self)
        if isinstance(d, dict) and d.get("budget") is None:
            d.pop("budget", None)
        return d


class JobSpec(_Strict):
    """One training job."""

    name: str | None = Field(None, max_length=200)
    task: TaskSpec = Field(default_factory=AddingTask)
    cell: Cell = "rnn"
    activation: Activation | None = Field(None, description="rnn cell only; None means tanh")
    leaky_slope: float | None = Field(None, gt=0, lt=1, description="leaky_relu only (default 0.01)")
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1, le=8)
    init: InitSpec = Field(default_factory=InitSpec)
    clip: ClipSpec = Field(default_factory=ClipSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(50, ge=1)
    seed: int = Field(0, ge=0, lt=2**31)
    device: Device = "auto"
    probe: ProbeSpec = Field(default_factory=ProbeSpec)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        return check_text("name", v)

    @field_validator("init", mode="before")
    @classmethod
    def _init_shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"recurrent": v, "input": v}
        return v

    @field_validator("clip", mode="before")
    @classmethod
    def _clip_shorthand(cls, v: Any) -> Any:
        if v is None or v == "none":
            return {"mode": "none"}
        return v

    @model_validator(mode="after")
    def _combinations(self) -> JobSpec:
        if self.cell != "rnn" and self.activation is not None:
            raise ValueError(
                f"activation applies only to cell 'rnn' (LSTM and GRU have fixed gate activations); "
                f"remove it or set cell: rnn (got cell '{self.cell}', activation '{self.activation}')"
            )
        if self.leaky_slope is not None and self.activation != "leaky_relu":
            raise ValueError("leaky_slope applies only to activation 'leaky_relu'")
        if self.init.forget_bias is not None and self.cell != "lstm":
            raise ValueError(f"init.forget_bias applies only to cell 'lstm', not '{self.cell}'")
        if self.probe.batch_size > 4096:
            raise ValueError(f"probe.batch_size: got {self.probe.batch_size}; it must be at most 4096")
        return self

    # -- derived, read-only conveniences ---------------------------------------------------
    @property
    def act(self) -> str:
        """The effective activation of a vanilla cell ('tanh' when unset); None for gated cells."""
        return (self.activation or "tanh") if self.cell == "rnn" else "gated"

    @property
    def slope(self) -> float:
        return self.leaky_slope if self.leaky_slope is not None else 0.01

    @property
    def steps(self) -> int:
        """The longest sequence the engine unrolls for this task (models/tasks): copy runs
        T + 2·n_copy steps; the p13 adding variant draws lengths in [T, T + max(1, ⌊0.1·T⌋)); digits 64."""
        t = self.task
        if t.name == "copy":
            return t.seq_len + 2 * t.n_copy
        if t.name == "adding" and t.variant == "p13":
            # int(T·0.1) as the engine draws it; T // 10 past floats' exact integers (no OverflowError for
            # a T of hundreds of digits: check_limits refuses it with a message)
            tenth = int(t.seq_len * 0.1) if t.seq_len < 2**53 else t.seq_len // 10
            return t.seq_len + max(1, tenth) - 1
        return t.seq_len

    @property
    def width(self) -> int:
        """The widest input or per-step output the engine builds for this task (models/tasks): the
        one-hot symbols of copy (n_symbols + 2), charlm's vocabulary (the bundled text's, or at most
        MAX_CHARLM_VOCAB for a user's file), a few inputs for the others."""
        t = self.task
        if t.name == "copy":
            return t.n_symbols + 2
        if t.name == "charlm":
            return BUNDLED_CHARLM_VOCAB if t.path is None else MAX_CHARLM_VOCAB
        return {"adding": 2, "temporal_order": 6, "digits": 1, "forecast": 1}[t.name]

    @property
    def io_sizes(self) -> tuple[int, int]:
        """(input size, output size) of the network for this task (models/tasks): copy n_symbols + 2 in,
        n_symbols + 1 out; charlm its vocabulary both ways (for a ``task.path`` text at most
        MAX_CHARLM_VOCAB, since the file is not read here); adding 2/1, temporal_order 6/4, digits 1/10,
        forecast 1/1."""
        t = self.task
        if t.name == "copy":
            return t.n_symbols + 2, t.n_symbols + 1
        if t.name == "charlm":
            v = BUNDLED_CHARLM_VOCAB if t.path is None else MAX_CHARLM_VOCAB
            return v, v
        return {"adding": (2, 1), "temporal_order": (6, 4), "digits": (1, 10), "forecast": (1, 1)}[t.name]

    @property
    def num_params(self) -> int:
        """The network's parameters, computed from the spec (nothing is built): per layer k, G gate blocks
        (rnn 1, gru 3, lstm 4) of W_ih (G·H × in_k, in_0 the task's input size, then H), W_hh (G·H × H)
        and two biases (G·H each), plus PReLU's one slope per layer; then the linear head (H·out + out).
        Exact, except for a charlm ``task.path`` text, whose vocabulary is counted at its cap."""
        h, n, (n_in, n_out) = self.hidden_size, self.num_layers, self.io_sizes
        g = {"rnn": 1, "gru": 3, "lstm": 4}[self.cell]
        stack = g * h * (n_in + h + 2) + (n - 1) * g * h * (2 * h + 2)
        if self.act == "prelu":
            stack += n
        return stack + h * n_out + n_out

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def canonical(self) -> dict[str, Any]:
        """What is trained, in one form: equivalent specs give equal dicts (docs/spec.md, "Canonical
        form"). Without ``name``; defaults that the engine resolves are written out, and fields that
        cannot act for the chosen cell, activation, init or task are set to their defaults."""
        d = self.to_dict()
        d.pop("name", None)
        d["activation"] = self.act if self.cell == "rnn" else None
        d["leaky_slope"] = self.slope if d["activation"] == "leaky_relu" else None
        init, used = d["init"], {self.init.recurrent, self.init.input}
        default = InitSpec()
        for f, needs in (("std", "normal"), ("bound", "uniform"), ("scale", "identity")):
            if needs not in used:
                init[f] = getattr(default, f)
        if init["bias"] is None:
            init["bias"] = "default" if used == {"default"} else "zeros"
        if self.task.name == "digits" and not self.task.permuted:
            d["task"]["perm_seed"] = 0
        d["probe"]["every"] = min(self.probe.every, self.epochs)   # every ≥ epochs: only epoch 0 and the last
        return d

    def spec_hash(self) -> str:
        """Identity of what is trained: sha256 of the canonical JSON (``canonical()``, sorted keys)."""
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()

    def legacy_hash(self) -> str:
        """The hash runs created before the canonical form got (the spec as written, without ``name``);
        duplicate detection also looks these up so older rows still count."""
        d = self.to_dict()
        d.pop("name", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        """The run label of rnnlab.records.run_label without a run id: 'lstm adding T=100 h128x1 s0',
        then ' · name' when the spec has one."""
        return run_label({"cell": self.cell, "activation": self.act, "task": self.task.name,
                          "seq_len": self.task.seq_len, "hidden_size": self.hidden_size,
                          "num_layers": self.num_layers, "seed": self.seed, "name": self.name})


# ---------------------------------------------------------------------------------------------
# Operator limits (from settings), applied after schema validation
# ---------------------------------------------------------------------------------------------

class Limits(BaseModel):
    """Sizes an operator allows for one job, so that one job cannot take a machine down."""

    max_hidden_size: int = 4096
    max_seq_len: int = 10_000
    max_batch_size: int = 4096
    max_epochs: int = 10_000
    max_steps_per_epoch: int = 100_000
    # hidden_size · seq_len · batch_size · num_layers: a rough memory bound for the unrolled graph; also
    # steps · batch_size · width, the one-hot inputs and outputs (JobSpec.width)
    max_work: int = 2_000_000_000
    # the network's parameters (JobSpec.num_params): 30M is 120 MB of float32 weights and about 360 MB per
    # checkpoint with Adam's two moments, one database row each epoch; the presets and studies use < 0.5M
    max_params: int = 30_000_000
    max_sweep_runs: int = 1_000
    # where task.path may point (a folder); None allows any path (single-user laptop setups)
    data_dir: str | None = None


MAX_ERRORS_SHOWN = 20   # the errors a SpecError's message lists (``errors`` keeps them all)


class SpecError(ValueError):
    """A spec was rejected. ``errors`` holds one message per problem, each naming the field,
    the value given and what is allowed."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        lines = [f"  - {e}" for e in errors[:MAX_ERRORS_SHOWN]]
        if len(errors) > MAX_ERRORS_SHOWN:   # a file with 60,000 unknown keys reads as 22 lines, not 60,001
            lines.append(f"  … and {len(errors) - MAX_ERRORS_SHOWN:,} more")
        super().__init__("invalid spec:\n" + "\n".join(lines))


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    # drop the discriminator tag pydantic inserts for tagged unions ("task.adding.seq_len")
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "task" and parts[1] in TASK_NAMES:
        parts.pop(1)
    return ".".join(parts) or "spec"


def _format_errors(err: ValidationError | list[Any]) -> list[str]:
    out = []
    for e in err.errors(include_url=False) if isinstance(err, ValidationError) else err:
        loc = _fmt_loc(e["loc"])
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
            out.append(msg if loc == "spec" or msg.startswith(loc) else f"{loc}: {msg}")
            continue
        if e["type"] == "bool_number":
            ctx = e["ctx"]
            field = ctx["field"] if loc == "spec" else f"{loc}.{ctx['field']}"
            out.append(f"{field}: got {ctx['value']}; a boolean (true/false, yes/no, on/off) is not a number")
            continue
        if e["type"] == "extra_forbidden":
            out.append(f"{loc}: unknown field (check the spelling; see `rnnlab spec --example`)")
            continue
        if e["type"] == "union_tag_invalid":
            out.append(f"{loc}.name: got {e['input'].get('name')!r}; allowed: {', '.join(TASK_NAMES)}"
                       if isinstance(e.get("input"), dict) else f"{loc}: {msg}")
            continue
        val = e.get("input")
        # bounded: a value can be huge (an int past 4,300 digits cannot even be repr'd)
        shown = "{…}" if isinstance(val, dict) else int_text(val) if type(val) is int else reprlib.repr(val)
        if isinstance(val, float) and not math.isfinite(val):
            msg = "must be a finite number"
        out.append(f"{loc}: got {shown}; {msg[0].lower() + msg[1:]}")
    return out


format_errors = _format_errors   # public: client.submit formats a re-validated spec's errors with it


def _env(field: str) -> str:
    return f"RNNLAB_{field.upper()}"


_LONG_INT = 10**15   # from here on a number is shown by its number of digits


def int_text(n: int, commas: bool = False) -> str:
    """An integer as a message shows it: whole below 10^15 (with thousands separators if ``commas``), else
    'a 4,299-digit number' (no giant string is made: Python refuses str() past 4,300 digits)."""
    if -_LONG_INT < n < _LONG_INT:
        return f"{n:,}" if commas else str(n)
    m = abs(n)
    k = int((m.bit_length() - 1) * math.log10(2))   # floor(log10 |n|), give or take one
    digits = k + 1 + (m >= 10 ** (k + 1)) - (m < 10 ** k)
    return f"a {'negative ' if n < 0 else ''}{digits:,}-digit number"


def over_limit(what: str, value: int, limits: Limits, field: str) -> str | None:
    """The message for a size over the operator's limit ``field`` of Limits, or None; a huge value is
    named by its number of digits (int_text)."""
    cap = getattr(limits, field)
    if value <= cap:
        return None
    commas = field in ("max_work", "max_params")
    return (f"{what}: got {int_text(value, commas)}; the operator's limit is {int_text(cap, commas)} "
            f"({_env(field)} raises it)")


def check_limits(spec: JobSpec, limits: Limits) -> list[str]:
    """Every operator limit, computed from the spec's fields (nothing is allocated): the sizes, the
    real number of steps (``JobSpec.steps``) and the unrolled graph of training and of the probe."""
    checks = [
        ("hidden_size", spec.hidden_size, "max_hidden_size"),
        ("task.seq_len", spec.task.seq_len, "max_seq_len"),
        ("batch_size", spec.batch_size, "max_batch_size"),
        ("probe.batch_size", spec.probe.batch_size, "max_batch_size"),
        ("epochs", spec.epochs, "max_epochs"),
        ("steps_per_epoch", spec.steps_per_epoch, "max_steps_per_epoch"),
    ]
    if spec.steps != spec.task.seq_len:
        checks.append((f"steps of the {spec.task.name} task ({_steps_formula(spec)})", spec.steps, "max_seq_len"))
    unrolled = spec.hidden_size * spec.steps * spec.num_layers
    checks += [
        ("hidden_size·steps·batch_size·num_layers", unrolled * spec.batch_size, "max_work"),
        ("hidden_size·steps·probe.batch_size·num_layers", unrolled * spec.probe.batch_size, "max_work"),
        (f"steps·batch_size·width ({_width_formula(spec)})", spec.steps * spec.batch_size * spec.width, "max_work"),
        (f"steps·probe.batch_size·width ({_width_formula(spec)})", spec.steps * spec.probe.batch_size * spec.width,
         "max_work"),
    ]
    checks.append((f"parameters ({_params_formula(spec)})", spec.num_params, "max_params"))
    errs = [m for what, value, field in checks if (m := over_limit(what, value, limits, field))]
    path = getattr(spec.task, "path", None)
    if path and limits.data_dir:
        root = Path(limits.data_dir).resolve()
        if not (Path(path).is_absolute() and Path(path).resolve().is_relative_to(root)):
            errs.append(f"task.path: got {path!r}; it must be an absolute path inside the data folder "
                        f"{root} (RNNLAB_DATA_DIR)")
    return errs


def _width_formula(spec: JobSpec) -> str:
    t = spec.task
    if t.name == "copy":
        return f"width = task.n_symbols + 2 = {spec.width}, the one-hot symbols"
    if t.name == "charlm" and t.path is not None:
        return (f"width = up to {MAX_CHARLM_VOCAB:,}, the distinct characters a task.path text may have "
                f"(MAX_CHARLM_VOCAB)")
    if t.name == "charlm":
        return f"width = {spec.width}, the distinct characters of the bundled text"
    return f"width = {spec.width}, the {t.name} task's inputs"


def _steps_formula(spec: JobSpec) -> str:
    if spec.task.name == "copy":
        return f"T + 2·n_copy = {int_text(spec.task.seq_len)} + 2·{spec.task.n_copy}"
    return f"up to 1.1·T for p13, T = {int_text(spec.task.seq_len)}"


def _params_formula(spec: JobSpec) -> str:
    g = {"rnn": 1, "gru": 3, "lstm": 4}[spec.cell]
    n_in, n_out = spec.io_sizes
    cap = " (a task.path text's vocabulary counted at its cap)" if spec.task.name == "charlm" and spec.task.path else ""
    return (f"{spec.cell}: {g} gate block{'s' if g > 1 else ''} × hidden_size {int_text(spec.hidden_size)} × "
            f"{spec.num_layers} layer{'s' if spec.num_layers > 1 else ''}, {n_in} in, {n_out} out{cap}")


def parse_spec(data: Any, limits: Limits | None = None) -> JobSpec:
    """Validate a mapping (from YAML/JSON/a form) into a JobSpec, or raise SpecError listing
    every problem."""
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping of fields, got {type(data).__name__}"])
    data = dict(data)
    data.pop("spec_version", None)
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_errors(e)) from None
    errs = check_limits(spec, limits or Limits())
    if errs:
        raise SpecError(errs)
    return spec


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------

# A job spec has about 40 fields, so a sweep sets at most MAX_SWEEP_PATHS dotted paths (in vary, and in
# any one explicit point), each at most MAX_SWEEP_PATH_CHARS long (the longest field path,
# init.spectral_radius, has 20): checked when the sweep is parsed, before any grid point is built, since
# each grid point sets every path and validates the result.
MAX_SWEEP_PATHS = 100
MAX_SWEEP_PATH_CHARS = 200


def _paths_problem(where: str, paths: list[str]) -> str | None:
    """Why the dotted paths of ``vary`` or of one point are too many or too long, or None."""
    if len(paths) > MAX_SWEEP_PATHS:
        return (f"{where}: {len(paths):,} paths; a sweep sets at most {MAX_SWEEP_PATHS} dotted field paths "
                f"(a job spec has about 40 fields)")
    long = next((k for k in paths if len(k) > MAX_SWEEP_PATH_CHARS), None)
    if long is not None:
        return (f"{where}: the path {_cut(long, 40)!r} has {len(long):,} characters; a dotted field path has at "
                f"most {MAX_SWEEP_PATH_CHARS}")
    return None


class SweepSpec(_Strict):
    """A grid of jobs: ``base`` is a job spec, ``vary`` maps dotted field paths to lists of
    values (``cell: [rnn, lstm]``, ``task.seq_len: [50, 100]``), ``seeds`` lists the seeds.
    The grid is the cartesian product of every list.

    ``points`` (optional) lists settings that only make sense together, each a mapping of dotted
    paths to values (``{cell: lstm, init.forget_bias: 3}`` next to ``{cell: gru}``): the grid is
    then every point × the product of ``vary`` × the seeds. A path is set by ``vary`` or by
    ``points``, never both."""

    name: str | None = Field(None, max_length=200)
    base: dict[str, Any] = Field(default_factory=dict)
    vary: dict[str, list[Any]] = Field(default_factory=dict)
    points: list[dict[str, Any]] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        return check_text("name", v)

    @field_validator("vary")
    @classmethod
    def _nonempty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        problem = _paths_problem("vary", list(v))
        if problem:
            raise ValueError(problem)
        for k, vals in v.items():
            if not vals:
                raise ValueError(f"vary.{_cut(k)}: the list of values is empty")
        return v

    @field_validator("points")
    @classmethod
    def _points_ok(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, p in enumerate(v):
            if not p:
                raise ValueError(f"points[{i}]: the point sets no field; give at least one path: value")
            problem = _paths_problem(f"points[{i}]", list(p))
            if problem:
                raise ValueError(problem)
            for k in p:
                if not k or any(not part for part in k.split(".")):
                    raise ValueError(f"points[{i}]: {_cut(repr(k))} is not a dotted field path (e.g. init.forget_bias)")
        return v

    @model_validator(mode="after")
    def _points_apart_from_vary(self) -> SweepSpec:
        for i, p in enumerate(self.points):
            both = [k for k in p if k in self.vary]
            if both:
                raise ValueError(f"points[{i}]: {_cut(', '.join(both))} is also in vary; a path is set by vary or by "
                                 f"points, not both")
        return self

    @field_validator("seeds")
    @classmethod
    def _seeds_ok(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("seeds: give at least one seed")
        bad = [s for s in v if s < 0]
        if bad:   # a few of them and the count: the list itself can be huge
            shown = ", ".join(map(int_text, bad[:5])) + (", …" if len(bad) > 5 else "")
            raise ValueError(f"seeds: {len(bad):,} negative seed{'s' if len(bad) > 1 else ''} ({shown}); "
                             f"seeds must be ≥ 0")
        big = [s for s in v if s >= 2**31]
        if big:
            shown = ", ".join(map(int_text, big[:5])) + (", …" if len(big) > 5 else "")
            raise ValueError(f"seeds: {len(big):,} seed{'s' if len(big) > 1 else ''} too large ({shown}); "
                             f"seeds must be below 2^31 = {2**31}")
        return v


class _PathError(ValueError):
    """A dotted path goes below a field that holds a plain value (``hidden_size.x`` with hidden_size 8)."""


def _cut(path: str, limit: int = 100) -> str:
    """A dotted path as a message shows it: cut to ``limit`` characters (a key can be huge)."""
    return path if len(path) <= limit else path[:limit - 1] + "…"


def _set_path(d: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    cur = d
    for depth, k in enumerate(keys[:-1]):
        nxt = cur.get(k)
        if isinstance(nxt, str) and k == "init":  # expand the init shorthand before nesting into it
            nxt = {"recurrent": nxt, "input": nxt}
        if nxt is None:
            nxt = {}
        elif not isinstance(nxt, dict):
            above = _cut(".".join(keys[:depth + 1]))
            raise _PathError(f"{above} is a value ({reprlib.repr(nxt)}), not a group of fields")
        nxt = dict(nxt)
        cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def _point_name(base: str | None, keys: list[str], values: tuple) -> str | None:
    """A sweep run's name: the sweep's (or base spec's) name and its grid point, e.g.
    'init-sweep · init.recurrent=orthogonal activation=relu', so the runs of a sweep can be told
    apart in lists and legends. Not part of the spec hash; cut to the name field's 200 characters."""
    point = " ".join(f"{k}={short_value(v)}" for k, v in zip(keys, values))
    name = " · ".join(p for p in (base, point) if p) or None
    return name if name is None or len(name) <= 200 else name[:199] + "…"


def short_value(v: Any, limit: int = 200) -> str:
    """A value as compact JSON (a string as it is), cut to ``limit`` characters: a huge value is
    encoded only as far as the cut (the encoder is lazy)."""
    if isinstance(v, str):
        return v if len(v) <= limit else v[:limit - 1] + "…"
    out, size = [], 0
    try:
        for chunk in json.JSONEncoder(separators=(",", ":"), default=repr).iterencode(v):
            out.append(chunk)
            size += len(chunk)
            if size > limit:
                return "".join(out)[:limit - 1] + "…"
    except ValueError:   # an int past 4,300 digits (Python will not write it out)
        return (int_text(v) if type(v) is int else "".join(out) + "…")[:limit]
    return "".join(out)


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 40
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 5
_AT_SHOWN = 4   # the paths an error's grid point names
MAX_SWEEP_ERRORS = 1_000   # expand_sweep stops checking grid points once it has this many distinct errors


def _brief(v: Any) -> str:
    try:
        return _BRIEF.repr(v)
    except ValueError:   # an int past 4,300 digits, somewhere in the value
        return int_text(v) if type(v) is int else "…"


def _at(sweep: SweepSpec, pi: int, paths: list[str], vals: tuple) -> str:
    """A grid point as an error names it, in a bounded length: the explicit point's index, then at most
    _AT_SHOWN path=value pairs, those that differ between grid points first, and how many more."""
    varies = [i for i, k in enumerate(paths)
              if (len(sweep.vary[k]) > 1 if k in sweep.vary else len(sweep.points) > 1)]
    first = set(varies)
    order = [*varies, *(i for i in range(len(paths)) if i not in first)]
    pairs = [f"{_cut(paths[i], 40)}={_brief(vals[i])}" for i in order[:_AT_SHOWN]]
    if len(paths) > _AT_SHOWN:
        pairs.append(f"… {len(paths) - _AT_SHOWN:,} more")
    return ", ".join([*([f"points[{pi}]"] if sweep.points else []), *pairs])


def sweep_size(vary: dict[str, list[Any]], n_seeds: int, n_points: int = 0) -> int:
    """The number of grid points, by arithmetic (nothing is expanded); ``n_points`` explicit points
    (``SweepSpec.points``) multiply the grid, none leave it as it is."""
    return math.prod(len(v) for v in vary.values()) * n_seeds * max(n_points, 1)


_EXACT_RUNS = 10**18   # a run count above this is shown as "more than 10^k runs"
_AXES_SHOWN = 5


def check_sweep_size(vary: dict[str, list[Any]], n_seeds: int, limits: Limits, n_points: int = 0) -> None:
    """Raise SpecError when the grid is over RNNLAB_MAX_SWEEP_RUNS; call before expanding anything.
    The count is multiplied only up to 10^18 (beyond, its order of magnitude is a sum of logarithms:
    no giant integer is built or printed), and the message names at most five axes."""
    sizes = [*([n_points] if n_points else []), *(len(v) for v in vary.values()), n_seeds]
    n = 1
    for m in sizes:
        n *= m
        if n > _EXACT_RUNS:
            break
    if n <= limits.max_sweep_runs:
        return
    if n <= _EXACT_RUNS:
        count = f"{n:,}"
    else:   # the exact count has more digits than anyone reads; 10^k is a safe floor of it
        k = math.floor(sum(math.log10(m) for m in sizes) - 1e-6)
        count = f"more than 10^{max(k, 18)}"
    axes = [*([f"{n_points} points"] if n_points else []),
            *(f"{len(v)} {k if len(k) <= 60 else k[:59] + '…'}" for k, v in vary.items())]
    if len(axes) > _AXES_SHOWN:
        axes = [*axes[:_AXES_SHOWN], f"… and {len(axes) - _AXES_SHOWN:,} more"]
    shown = " × ".join(axes)
    raise SpecError([f"sweep: {count} runs ({shown + ' × ' if shown else ''}{n_seeds} seeds); the operator's "
                     f"limit is {limits.max_sweep_runs} (RNNLAB_MAX_SWEEP_RUNS raises it)"])


def grid_cells(sweep: SweepSpec):
    """Yield (index of the explicit point, paths, values) for every grid point of the sweep without
    its seeds, in grid order: the explicit points (or one empty point), then the product of ``vary``.
    Check the size first."""
    keys = list(sweep.vary)
    for pi, point in enumerate(sweep.points or [{}]):
        for values in itertools.product(*(sweep.vary[k] for k in keys)):
            yield pi, [*point, *keys], (*point.values(), *values)


def _base_errors(sweep: SweepSpec) -> list[str]:
    """Errors of the base that every grid point would repeat: those of a top-level field that no
    varied path (nor the run's seed and name) touches; a field's value is validated on its own, so
    such an error does not depend on the varied values. Each is named '[base] field: …'."""
    touched = {"seed", "name", *(k.split(".")[0] for k in sweep.vary),
               *(k.split(".")[0] for p in sweep.points for k in p)}
    fixed = {k: v for k, v in sweep.base.items() if k not in touched and k != "spec_version"}
    try:
        JobSpec.model_validate(fixed)
    except ValidationError as e:
        own = [x for x in e.errors(include_url=False) if x["loc"] and x["loc"][0] not in touched]
        return [f"[base] {m}" for m in _format_errors(own)]
    return []


def expand_sweep(sweep: SweepSpec, limits: Limits | None = None) -> list[JobSpec]:
    """Expand a sweep into validated job specs (errors for every bad grid point are collected). The
    grid's size is checked first, by arithmetic, then the base alone (an error every point would
    repeat is reported once, as '[base] …'); each grid point is validated once, with the first seed
    (the seed changes nothing else), and copied for the other seeds."""
    limits = limits or Limits()
    check_sweep_size(sweep.vary, len(sweep.seeds), limits, len(sweep.points))
    base_errors = _base_errors(sweep)
    if base_errors:
        raise SpecError(base_errors)
    specs: list[JobSpec] = []
    errors: dict[str, None] = {}   # each message once, in grid order
    n_cells = sweep_size(sweep.vary, 1, len(sweep.points))
    for n, (pi, paths, vals) in enumerate(grid_cells(sweep), 1):
        if len(errors) >= MAX_SWEEP_ERRORS:   # a base with thousands of bad fields under a varied group
            errors[f"sweep: checking stopped after {len(errors):,} errors, at grid point {n - 1:,} of "
                   f"{n_cells:,}; fix these first"] = None
            break
        d = dict(sweep.base)   # _set_path copies each mapping it goes into: the base is not changed
        try:
            for k, v in zip(paths, vals):
                where = f"vary.{_cut(k)}" if k in sweep.vary else f"points[{pi}].{_cut(k)}"
                _set_path(d, k, v)
        except _PathError as e:
            errors[f"{where}: {e}"] = None
            continue
        d["seed"] = sweep.seeds[0]
        d["name"] = _point_name(d.get("name") or sweep.name, paths, vals)
        try:
            spec = parse_spec(d, limits)
        except SpecError as e:
            at = _at(sweep, pi, paths, vals)
            errors.update((f"[{at}] {m}", None) for m in e.errors)
            continue
        specs += [spec, *(spec.model_copy(update={"seed": s}, deep=True) for s in sweep.seeds[1:])]
    if errors:
        raise SpecError(list(errors))
    return specs


def find_duplicates(specs: list[JobSpec]) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of specs in the list that train the same thing."""
    seen: dict[str, int] = {}
    dups = []
    for j, s in enumerate(specs):
        h = s.spec_hash()
        if h in seen:
            dups.append((seen[h], j))
        else:
            seen[h] = j
    return dups


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

MAX_FILE_BYTES = 1_000_000   # a spec or sweep file; the largest real sweep files are a few kB


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys in a mapping (PyYAML keeps the last one) and
    aliases (``*name``: a few lines of them can stand for billions of values)."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        seen: dict[tuple[str, Any], int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                continue
            line, tagged = key_node.start_mark.line + 1, (type(key).__name__, key)
            if tagged in seen:
                raise yaml.MarkedYAMLError(
                    None, None, f"duplicate key {key!r} (lines {seen[tagged]} and {line}); give each field once",
                    key_node.start_mark)
            seen[tagged] = line
        return super().construct_mapping(node, deep)


def read_text_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A spec file's text: a regular file of at most ``max_bytes`` (checked before reading, and the
    read is bounded), UTF-8 without NUL bytes; a clear SpecError otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SpecError([f"{p}: file not found"]) from None
    except OSError as e:
        raise SpecError([f"{p}: cannot read it ({e.strerror})"]) from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError([f"{p}: not a regular file (a spec is a YAML or JSON file)"])
    if st.st_size > max_bytes:
        raise SpecError([f"{p}: {st.st_size:,} bytes; a spec file may have at most {max_bytes:,} bytes"])
    try:
        with open(p, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise SpecError([f"{p}: cannot read it ({e.strerror})"]) from None
    if len(raw) > max_bytes:   # it grew after the stat
        raise SpecError([f"{p}: more than {max_bytes:,} bytes; a spec file may have at most {max_bytes:,} bytes"])
    nul = raw.find(b"\0")
    if nul >= 0:
        raise SpecError([f"{p}: a binary file (NUL byte at offset {nul}); a spec is UTF-8 text"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError([f"{p}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                         f"save it as UTF-8"]) from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    if not isinstance(e, yaml.MarkedYAMLError):
        return " ".join(str(e).split())
    what = " ".join(p for p in (e.context, e.problem) if p) or "unreadable"
    mark = e.problem_mark or e.context_mark
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what


def parse_yaml(text: str) -> Any:
    """YAML or JSON text into a value, with the spec files' loader: duplicate keys and aliases
    (``*name``) refused. A SpecError holds one clear line (without a source: the caller names it)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise SpecError([_yaml_problem(e)]) from None
    except RecursionError:
        raise SpecError(["nested too deeply to be a spec"]) from None
    except ValueError as e:   # e.g. an integer of more than 4300 digits
        raise SpecError([f"a value cannot be read: {e}"]) from None


def parse_document(text: str, source: str = "spec") -> dict[str, Any]:
    """YAML or JSON text into a mapping: duplicate keys and aliases refused, every error one clear line."""
    try:
        data = parse_yaml(text)
    except SpecError as e:
        msg = e.errors[0]
        raise SpecError([f"{source}: {msg}" if msg.startswith(("nested", "a value"))
                         else f"{source}: not valid YAML/JSON: {msg}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{source}: expected a mapping of fields at the top level"])
    return data


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file into a mapping, with a clear error (see read_text_file, parse_document)."""
    return parse_document(read_text_file(path), str(path))


SWEEP_KEYS = ("base", "vary", "points", "seeds")


def is_sweep(doc: dict[str, Any]) -> bool:
    """A document is a sweep when it has any of a sweep's own fields (base, vary, points, seeds)."""
    return any(k in doc for k in SWEEP_KEYS)


def load(path: str | Path, limits: Limits | None = None) -> JobSpec | SweepSpec:
    """Load a job spec or a sweep spec from a YAML/JSON file."""
    doc = load_document(path)
    if is_sweep(doc):
        sweep = parse_sweep(doc)
        expand_sweep(sweep, limits)  # validate every grid point now (its size is checked first)
        return sweep
    return parse_spec(doc, limits)


def parse_sweep(doc: Any) -> SweepSpec:
    """Validate a sweep mapping (``base``, ``vary``, ``seeds``), or raise SpecError; the grid is
    neither checked nor expanded here (expand_sweep does both, the size first)."""
    if not isinstance(doc, dict):
        raise SpecError([f"sweep: expected a mapping of fields, got {type(doc).__name__}"])
    try:
        return SweepSpec.model_validate(doc)
    except ValidationError as e:
        errors = _format_errors(e)
    # a job field next to vary/points/seeds: say where it goes
    job = [k for k in doc if k in JobSpec.model_fields and k not in SweepSpec.model_fields]
    errors = [f"{m.split(':', 1)[0]}: a job field at the top of a sweep; put it under base: (the spec every "
              f"run starts from)" if m.split(":", 1)[0] in job and "unknown field" in m else m for m in errors]
    raise SpecError(errors)
