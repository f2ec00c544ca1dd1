"""Bad inputs tried against the three ways into rnnlab, and the message each got.

Usage: .venv/bin/python bench/bad_inputs.py  (prints a markdown table; touches no shared service)

Channels:
- cli: `rnnlab submit FILE --dry-run` (with `--tag` for tag cases, without --dry-run), run in-process
  with its own RNNLAB_HOME (SQLite and the filesystem broker in a temporary folder);
- form: the dashboard's form-collecting function (dashboard.forms.collect + validate) with the widget
  values set as a user would set them, or the sweep builder's functions (dashboard.sweeps.parse_seeds,
  build) for seeds and grids;
- submit: client.submit.submit() called as an API user would, with a spec that passed the schema
  under no size limits (so the limits inside submit() are what refuses it).

A case that a channel cannot express (a raw file for the form, an unknown field in a form) shows "—".
tests/rnnlab/test_limits.py runs every case and checks each message names the field it should.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}
NA = "—"


@dataclass
class Case:
    id: str
    what: str
    expect: str                                   # every channel's message must contain this
    doc: dict | list | None = None                # a spec mapping (all channels)
    raw: bytes | Callable[[Path], Path] | None = None   # file contents, or a function making the path (CLI)
    seeds: str | None = None                      # the sweep builder's seeds text (form)
    sweep: dict | None = None                     # a sweep document (CLI file; form builder; submit)
    tags: list[str] = field(default_factory=list)  # tags on a valid spec (CLI --tag, submit)
    owner: str | None = None                      # submit(owner=…)


def _t(**kw: Any) -> dict:
    return {**TINY, **kw}


def _task(**kw: Any) -> dict:
    return {**TINY, "task": kw}


def _deep(n: int) -> bytes:
    return ("a: " + "[" * n + "]" * n + "\n").encode()


CASES: list[Case] = [
    # booleans are not numbers
    Case("bool-hidden", "hidden_size: true", "hidden_size", doc=_t(hidden_size=True)),
    Case("bool-lr", "optimizer.lr: true", "optimizer.lr", doc=_t(optimizer={"lr": True})),
    Case("bool-seed", "seed: false", "seed", doc=_t(seed=False)),
    Case("bool-copy", "task.n_copy: true", "task.n_copy", doc=_task(name="copy", n_copy=True)),
    Case("bool-probe", "probe.batch_size: true", "probe.batch_size", doc=_t(probe={"batch_size": True})),
    Case("bool-radius", "init.spectral_radius: false", "init.spectral_radius",
         doc=_t(init={"spectral_radius": False})),
    Case("bool-yes", "epochs: yes (YAML 1.1 boolean)", "epochs", raw=b"epochs: yes\n"),
    Case("bool-on", "batch_size: on (YAML 1.1 boolean)", "batch_size", raw=b"batch_size: on\n"),
    # ranges and types
    Case("neg-hidden", "hidden_size: -3", "hidden_size", doc=_t(hidden_size=-3)),
    Case("zero-hidden", "hidden_size: 0", "hidden_size", doc=_t(hidden_size=0)),
    Case("frac-hidden", "hidden_size: 1.5", "hidden_size", doc=_t(hidden_size=1.5)),
    Case("str-hidden", "hidden_size: big", "hidden_size", doc=_t(hidden_size="big")),
    Case("layers", "num_layers: 9", "num_layers", doc=_t(num_layers=9)),
    Case("seed-big", "seed: 2**31", "seed", doc=_t(seed=2**31)),
    Case("seed-neg", "seed: -1", "seed", doc=_t(seed=-1)),
    Case("lr-nan", "optimizer.lr: .nan", "optimizer.lr", doc=_t(optimizer={"lr": float("nan")})),
    Case("lr-inf", "optimizer.lr: .inf", "optimizer.lr", doc=_t(optimizer={"lr": float("inf")})),
    Case("lr-big", "optimizer.lr: 100", "optimizer.lr", doc=_t(optimizer={"lr": 100})),
    Case("slope-big", "leaky_slope: 1.5", "leaky_slope", doc=_t(activation="leaky_relu", leaky_slope=1.5)),
    Case("clip-neg", "clip.clip_value: -1", "clip.clip_value", doc=_t(clip={"mode": "value", "clip_value": -1})),
    # operator limits (sizes), computed from the fields before anything is allocated
    Case("lim-hidden", "hidden_size: 5000 (limit 4096)", "RNNLAB_MAX_HIDDEN_SIZE", doc=_t(hidden_size=5000)),
    Case("lim-hidden-huge", "hidden_size: 10**30", "hidden_size", doc=_t(hidden_size=10**30)),
    Case("lim-seq", "task.seq_len: 20000 (limit 10000)", "RNNLAB_MAX_SEQ_LEN",
         doc=_task(name="adding", seq_len=20000)),
    Case("lim-batch", "batch_size: 5000", "RNNLAB_MAX_BATCH_SIZE", doc=_t(batch_size=5000)),
    Case("lim-epochs", "epochs: 20000", "RNNLAB_MAX_EPOCHS", doc=_t(epochs=20000)),
    Case("lim-steps", "steps_per_epoch: 200000", "RNNLAB_MAX_STEPS_PER_EPOCH", doc=_t(steps_per_epoch=200000)),
    Case("lim-probe", "probe.batch_size: 5000", "probe.batch_size", doc=_t(probe={"batch_size": 5000})),
    Case("lim-probe-work", "probe batch 2048 × H 2048 × T 1000", "hidden_size·steps·probe.batch_size",
         doc=_t(hidden_size=2048, task={"name": "adding", "seq_len": 1000}, probe={"batch_size": 2048})),
    Case("lim-work", "H 4096 × T 1000 × batch 1024", "hidden_size·steps·batch_size",
         doc=_t(hidden_size=4096, task={"name": "adding", "seq_len": 1000}, batch_size=1024)),
    Case("lim-copy-steps", "copy T 9950 + 2·100 steps", "T + 2·n_copy",
         doc=_task(name="copy", seq_len=9950, n_copy=100)),
    Case("lim-p13-steps", "adding p13 T 9500 (up to 10449 steps)", "p13",
         doc=_task(name="adding", variant="p13", seq_len=9500)),
    Case("lim-params", "lstm H 2048 × 2 layers (50.4M parameters; limit 30M)", "RNNLAB_MAX_PARAMS",
         doc=_t(cell="lstm", hidden_size=2048, num_layers=2)),
    Case("lim-params-grid", "sweep of lstm × 2 layers over H 8, 2048 (one point over the parameter limit)",
         "RNNLAB_MAX_PARAMS", sweep={"base": _t(cell="lstm", num_layers=2), "vary": {"hidden_size": [8, 2048]}}),
    # combinations
    Case("momentum-adam", "momentum 0.9 with adam", "optimizer.momentum", doc=_t(optimizer={"momentum": 0.9})),
    Case("cell", "cell: lstmx", "cell", doc=_t(cell="lstmx")),
    Case("act-gru", "activation relu with cell gru", "activation", doc=_t(cell="gru", activation="relu")),
    Case("slope-tanh", "leaky_slope with tanh", "leaky_slope", doc=_t(leaky_slope=0.1)),
    Case("task-name", "task.name: addng", "task.name", doc=_task(name="addng")),
    Case("variant", "task.variant: h97", "task.variant", doc=_task(name="adding", variant="h97")),
    Case("p13-short", "p13 with T = 9", "task.seq_len", doc=_task(name="adding", variant="p13", seq_len=9)),
    Case("digits-len", "digits with seq_len 100", "task.seq_len", doc=_task(name="digits", seq_len=100)),
    Case("csv-path", "forecast csv without a path", "task.path", doc=_task(name="forecast", series="csv")),
    Case("clip-norm", "clip norm without max_norm", "clip.max_norm", doc=_t(clip={"mode": "norm"})),
    Case("radius-zeros", "spectral radius of zeros", "init.spectral_radius",
         doc=_t(init={"recurrent": "zeros", "spectral_radius": 0.9})),
    Case("forget-rnn", "forget_bias on an rnn", "init.forget_bias", doc=_t(init={"forget_bias": 1.0})),
    Case("device", "device: tpu", "device", doc=_t(device="tpu")),
    Case("unknown", "hiden_size: 8 (typo)", "hiden_size", doc=_t(hiden_size=8)),
    Case("not-mapping", "a list at the top level", "mapping", doc=[1, 2]),
    # text
    Case("name-nul", "name with NUL", "U+0000", doc=_t(name="run\x00x")),
    Case("name-rlo", "name with U+202E (right-to-left override)", "U+202E", doc=_t(name="abc\u202egpj.exe")),
    Case("name-esc", "name with an ANSI escape", "U+001B", doc=_t(name="\x1b[31mred")),
    Case("name-newline", "name with a newline", "U+000A", doc=_t(name="two\nlines")),
    Case("name-isolate", "name with U+2066 (bidi isolate)", "U+2066", doc=_t(name="a\u2066b")),
    Case("name-long", "name of 201 characters", "name", doc=_t(name="x" * 201)),
    Case("name-int", "name: 12 (a number)", "name", doc=_t(name=12)),
    Case("path-nul", "charlm path with NUL", "task.path", doc=_task(name="charlm", path="/tmp/a\x00b")),
    # files (CLI)
    Case("dup-yaml", "duplicate key in YAML", "duplicate key", raw=b"hidden_size: 8\ncell: rnn\nhidden_size: 16\n"),
    Case("dup-json", "duplicate key in JSON", "duplicate key", raw=b'{"cell": "rnn", "cell": "lstm"}'),
    Case("dup-nested", "duplicate key in a nested mapping", "duplicate key",
         raw=b"optimizer:\n  lr: 0.1\n  lr: 0.2\n"),
    Case("binary", "a binary file", "binary file", raw=bytes(range(256)) * 4),
    Case("latin1", "a Latin-1 file", "not UTF-8", raw="name: café\n".encode("latin-1")),
    Case("utf16", "a UTF-16 file", "binary file", raw="hidden_size: 8\n".encode("utf-16")),
    Case("big", "a 50 MB file", "at most 1,000,000 bytes", raw=lambda d: _sparse(d / "big.yaml", 50_000_000)),
    Case("alias", "YAML aliases (a billion-laughs bomb)", "aliases",
         raw=b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nhidden_size: *b\n"),
    Case("deep", "nesting 100,000 deep", "nested too deeply", raw=_deep(100_000)),
    Case("bigint", "an integer of 5,000 digits", "4300 digits", raw=b"seed: " + b"9" * 5000 + b"\n"),
    Case("syntax", "invalid YAML", "not valid YAML", raw=b"hidden_size: [8, 16\n"),
    Case("empty", "an empty file", "mapping", raw=b""),
    Case("dir", "a directory", "not a regular file", raw=lambda d: d),
    Case("missing", "a missing file", "file not found", raw=lambda d: d / "nope.yaml"),
    Case("devzero", "/dev/zero", "not a regular file", raw=lambda d: Path("/dev/zero")),
    # sweeps and seeds
    Case("seeds-huge", "seeds 0-20000000", "RNNLAB_MAX_SWEEP_RUNS", seeds="0-20000000"),
    Case("seeds-back", "seeds 5-1", "ends before it starts", seeds="5-1"),
    Case("seeds-over", "seeds 99999999999", "2147483647", seeds="99999999999"),
    Case("seeds-neg", "seeds -3", "not a non-negative whole number", seeds="-3"),
    Case("seeds-word", "seeds 'all'", "not a non-negative whole number", seeds="all"),
    Case("grid", "40 hidden sizes × 30 seeds", "RNNLAB_MAX_SWEEP_RUNS",
         sweep={"base": TINY, "vary": {"hidden_size": list(range(8, 48))}, "seeds": list(range(30))}),
    Case("grid-huge", "6 axes of 10 values (10^6 points)", "1,000,000 runs",
         sweep={"base": TINY, "vary": {k: list(range(1, 11)) for k in (
             "hidden_size", "epochs", "steps_per_epoch", "batch_size", "num_layers", "probe.every")}}),
    Case("sweep-bool-seeds", "sweep seeds: [true]", "seeds", sweep={"base": TINY, "seeds": [True]}),
    Case("sweep-empty-axis", "vary with an empty list", "vary.cell", sweep={"base": TINY, "vary": {"cell": []}}),
    # tags and owner
    Case("tag-nul", "tag with NUL", "U+0000", tags=["a\x00b"]),
    Case("tag-rlo", "tag with U+202E", "U+202E", tags=["x\u202ey"]),
    Case("tag-long", "tag of 101 characters", "1 to 100 characters", tags=["t" * 101]),
    Case("tag-blank", "a blank tag", "1 to 100 characters", tags=["  "]),
    Case("owner-rlo", "owner with U+202E", "U+202E", owner="adm\u202enim"),
]


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(b"name: x\n")
        f.truncate(size)   # a 50 MB file without writing 50 MB
    return path


def _flat(msg: str) -> str:
    return " ".join(msg.split())


# ------------------------------------------------------------------------------------------------
# Channels: each returns the message the input got, None if it was accepted, or NA
# ------------------------------------------------------------------------------------------------

def via_cli(case: Case, tmp: Path) -> str | None:
    import yaml
    from typer.testing import CliRunner

    from cli.main import app

    args: list[str] = []
    if case.raw is not None:
        path = case.raw(tmp) if callable(case.raw) else tmp / f"{case.id}.yaml"
        if not callable(case.raw):
            path.write_bytes(case.raw)
    elif case.doc is not None or case.sweep is not None:
        path = tmp / f"{case.id}.yaml"
        path.write_text(yaml.safe_dump(case.doc if case.doc is not None else case.sweep))
    elif case.tags:
        path = tmp / f"{case.id}.yaml"
        path.write_text(yaml.safe_dump(TINY))
        args = [a for t in case.tags for a in ("--tag", t)]
    else:
        return NA
    dry = [] if case.tags else ["--dry-run"]
    r = CliRunner().invoke(app, ["submit", str(path), *args, *dry])
    if r.exit_code == 0:
        return None
    text = _flat(r.stderr or r.output).replace(str(tmp), "<tmp>")
    return text.removeprefix("error: ").removeprefix("invalid spec: - ")


def _form_state(doc: dict) -> dict | None:
    """The dashboard form's widget values for a spec mapping, as a user would set them; None when the
    form has no widget for one of its fields."""
    from dashboard import forms

    state = forms.defaults()
    for k, v in doc.items():
        if k == "task":
            state["f.task.name"] = v["name"]
            for tk, tv in v.items():
                if tk != "name":
                    state[f"f.task.{v['name']}.{tk}"] = tv
        elif isinstance(v, dict):
            for sk, sv in v.items():
                if f"f.{k}.{sk}" not in state:
                    return None
                state[f"f.{k}.{sk}"] = sv
                if f"f.{k}.{sk}_on" in state:
                    state[f"f.{k}.{sk}_on"] = True
        elif f"f.{k}" in state:
            state[f"f.{k}"] = v
        else:
            return None
    return state


def via_form(case: Case) -> str | None:
    from dashboard import forms, sweeps
    from rnnlab.spec import Limits

    if case.seeds is not None:
        try:
            sweeps.parse_seeds(case.seeds, Limits().max_sweep_runs)
        except ValueError as e:
            return f"seeds: {e}"
        return None
    if case.sweep is not None:
        s = case.sweep
        if any(isinstance(x, bool) for x in s.get("seeds", [])):
            return NA   # the builder's seeds come from parse_seeds (text), never booleans
        plan = sweeps.build(dict(s["base"]), s.get("vary", {}), s.get("seeds", [0]), None, Limits())
        return "; ".join(plan.errors) or None
    if not isinstance(case.doc, dict):
        return NA
    state = _form_state(case.doc)
    if state is None:
        return NA
    spec, errors = forms.validate(forms.collect(state), Limits())
    if spec is not None:
        return NA   # the form left the offending field out (it does not apply): nothing bad reaches a spec
    return "; ".join(errors)


def unlimited():
    """rnnlab.spec.Limits with every size limit (each max_* field, max_params too) lifted: the schema alone.
    Nothing is built under it here: specs are only parsed and counted (JobSpec.num_params is arithmetic)."""
    from rnnlab.spec import Limits

    return Limits(**{k: 10**18 for k in Limits.model_fields if k.startswith("max_")})


def via_submit(case: Case, url: str, app) -> str | None:
    from client.submit import submit
    from rnnlab.spec import Limits, SpecError, expand_sweep, parse_spec, parse_sweep, sweep_size

    big = unlimited()
    try:
        if case.doc is not None:
            specs = [parse_spec(case.doc, big)]   # the schema alone, as an API caller might build it
        elif case.sweep is not None:
            sweep = parse_sweep(case.sweep)
            # the submit channel takes specs: build them without limits when that is cheap, so that
            # submit() itself refuses them; a grid too large to build is refused by arithmetic first
            small = sweep_size(sweep.vary, len(sweep.seeds)) <= 5000
            specs = expand_sweep(sweep, big if small else Limits())
        elif case.tags or case.owner:
            specs = [parse_spec(TINY)]
        else:
            return NA
        submit(specs, owner=case.owner, tags=case.tags, url=url, app=app)
    except SpecError as e:
        return "; ".join(e.errors)
    return None


def run_all(cases: list[Case] = CASES) -> list[dict[str, str | None]]:
    """Every case through every channel, in a private RNNLAB_HOME."""
    from rnnlab.queue import make_app
    from rnnlab.settings import get_settings

    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        old = {k: v for k, v in os.environ.items() if k.startswith("RNNLAB_")}
        for k in old:
            del os.environ[k]
        os.environ["RNNLAB_HOME"] = str(tmp / "home")
        get_settings.cache_clear()
        try:
            url = get_settings().db_url
            app = make_app("filesystem://", home=tmp / "home", prefix="bad-inputs-")
            for c in cases:
                rows.append({"id": c.id, "what": c.what, "expect": c.expect, "cli": via_cli(c, tmp),
                             "form": via_form(c), "submit": via_submit(c, url, app)})
        finally:
            for k in [k for k in os.environ if k.startswith("RNNLAB_")]:
                del os.environ[k]
            os.environ.update(old)
            get_settings.cache_clear()
    return rows


def _cell(msg: str | None) -> str:
    if msg is None:
        return "**accepted**"
    text = msg if len(msg) <= 160 else msg[:159] + "…"
    return json.dumps(text, ensure_ascii=True)[1:-1].replace("|", "\\|")


def main() -> None:
    rows = run_all()
    print(f"{len(rows)} bad inputs; each cell is the message that refused it (— where the channel cannot "
          "express the input).\n")
    print("| # | input | CLI (`rnnlab submit`) | dashboard form | `submit()` |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {_cell(r['what'])} | {_cell(r['cli'])} | {_cell(r['form'])} | {_cell(r['submit'])} |")


if __name__ == "__main__":
    main()
