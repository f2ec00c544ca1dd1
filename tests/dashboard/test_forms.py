"""The form is read from the spec model; the sweep's errors are placed by the value they come from;
the estimate counts what is submitted and schedules it on the workers."""

from __future__ import annotations

import math

import pytest
from pydantic import Field

from dashboard import estimate, forms, sweeps
from rnnlab.spec import JobSpec, Limits, ProbeSpec, parse_spec


def _schema_enum(schema: dict, model: str, field: str) -> list:
    """A Literal field's values from pydantic's JSON schema (an independent read of the model)."""
    prop = (schema["$defs"][model] if model not in ("", "JobSpec") else schema)["properties"][field]
    if "anyOf" in prop:
        prop = next(p for p in prop["anyOf"] if "enum" in p or "const" in p)
    return prop.get("enum") or [prop["const"]]


def test_every_choice_and_default_comes_from_the_spec():
    schema = JobSpec.model_json_schema()
    assert forms.choices(JobSpec, "cell") == _schema_enum(schema, "", "cell")
    assert forms.choices(JobSpec, "activation") == _schema_enum(schema, "", "activation")
    assert forms.choices(JobSpec, "device") == _schema_enum(schema, "", "device")
    for path, (model, name) in forms.LEAVES.items():
        if forms.kind(model, name) == "choice":
            assert forms.choices(model, name) == _schema_enum(schema, model.__name__, name), path
    assert list(forms.TASKS) == [t["properties"]["name"]["const"] for t in
                                 (schema["$defs"][r["$ref"].split("/")[-1]] for r in
                                  schema["properties"]["task"]["oneOf"])]
    # defaults: the spec's own (those that are None get the form's "when switched on" value or a switch)
    d, spec = forms.defaults(), JobSpec()
    for path in forms.LEAVES:
        value = spec
        for part in path.split("."):
            value = getattr(value, part)
        if value is not None:
            assert d[forms.P + path] == value, path
    for task, model in forms.TASKS.items():
        for f in forms.task_fields(task):
            value = getattr(model(), f)
            assert d[f"{forms.P}task.{task}.{f}"] == ("" if value is None else value), (task, f)


def test_a_field_added_to_the_spec_reaches_the_form_and_the_spec(monkeypatch):
    class ProbeWithWindow(ProbeSpec):
        window: int = Field(5, ge=2, description="steps per window")

    monkeypatch.setattr(forms, "LEAVES", {**forms.LEAVES, "probe.window": (ProbeWithWindow, "window")})
    state: dict = {}
    forms.ensure_defaults(state)
    assert state[forms.P + "probe.window"] == 5
    assert forms.collect(state)["probe"]["window"] == 5
    assert forms.help_text(ProbeWithWindow, "window", "probe.window", Limits()) == (
        "steps per window  \nAllowed probe.window: ≥ 2.")

    from streamlit.testing.v1 import AppTest

    def page():
        from dashboard import forms as f

        f.ensure_defaults(__import__("streamlit").session_state)
        f.render([])

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="f.probe.window").value == 5


def test_help_names_the_field_and_its_range():
    assert forms.allowed(JobSpec, "seed") == "≥ 0 and < 2,147,483,648"
    text = forms.help_text(JobSpec, "hidden_size", "hidden_size", Limits(max_hidden_size=64), "Units.")
    assert text == "Units.  \nAllowed hidden_size: ≥ 1 and ≤ 64 (the operator's limit)."


def test_what_is_typed_is_what_is_validated():
    state: dict = {}
    forms.ensure_defaults(state)
    state[forms.P + "optimizer.lr"] = 50.0
    state[forms.P + "hidden_size"] = 0
    spec, errors = forms.validate(forms.collect(state))
    assert spec is None and sorted(forms.field_of(e) for e in errors) == ["hidden_size", "optimizer.lr"]
    assert any("got 50.0" in e and "less than or equal to 10" in e for e in errors), errors


def test_a_varied_value_error_names_the_value_and_the_combination(sqlite_url):
    base = parse_spec({}).to_dict()
    plan = sweeps.build(base, {"cell": ["rnn", "lstm"], "activation": ["tanh", "relu"], "hidden_size": [8, 0]},
                        [0, 1], None, url=sqlite_url)
    assert not plan.specs and plan.form_errors == []
    act = "activation applies only to cell 'rnn' (LSTM and GRU have fixed gate activations); remove it or set cell: rnn"
    assert plan.vary_errors["activation"] == [
        # hidden_size = 0 fails first, before the combination is checked: only the point with 8 names it
        f"vary.activation[0] = tanh (with cell=lstm hidden_size=8): {act} (got cell 'lstm', activation 'tanh')",
        f"vary.activation[1] = relu (with cell=lstm hidden_size=8): {act} (got cell 'lstm', activation 'relu')"]
    assert plan.vary_errors["hidden_size"] == [
        "vary.hidden_size[1] = 0: hidden_size: got 0; input should be greater than or equal to 1"]
    # a sub-field of a varied path, and an unknown path
    plan = sweeps.build(base, {"clip": ["none", {"mode": "norm"}], "optimizer.lrr": [1]}, [0], None, url=sqlite_url)
    assert plan.vary_errors["clip"] == ["vary.clip[1] = {\"mode\":\"norm\"}: clip.max_norm is required when "
                                        "clip.mode is 'norm'"]
    assert plan.vary_errors["optimizer.lrr"][0].startswith("vary.optimizer.lrr[0] = 1: optimizer.lrr: unknown field")
    # an error of the base spec stays with the form
    plan = sweeps.build({**base, "num_layers": 9}, {"cell": ["rnn", "gru"]}, [0], None, url=sqlite_url)
    assert plan.vary_errors == {} and all("num_layers" in e for e in plan.form_errors) and plan.form_errors


def test_an_explicit_point_error_names_the_point(sqlite_url):
    base = parse_spec({}).to_dict()
    points = [{"cell": "lstm", "init.forget_bias": 3}, {"cell": "gru", "init.forget_bias": 3}]
    plan = sweeps.build(base, {"hidden_size": [8, 0]}, [0], None, url=sqlite_url, points=points)
    assert not plan.specs and plan.form_errors == []
    fb = "init.forget_bias applies only to cell 'lstm', not 'gru'"
    assert plan.vary_errors["points"] == [
        f'points[1] = {{"cell":"gru","init.forget_bias":3}} (with hidden_size=8): {fb}']
    # hidden_size = 0 fails with both points (it is checked before the combination), so no point is named
    assert plan.vary_errors["hidden_size"] == [
        "vary.hidden_size[1] = 0: hidden_size: got 0; input should be greater than or equal to 1"]
    plan = sweeps.build(base, {"activation": ["relu"]}, [0], None, url=sqlite_url,
                        points=[{"cell": "rnn"}, {"cell": "gru"}])
    assert len(plan.vary_errors["activation"]) == 1 and \
        plan.vary_errors["activation"][0].startswith("vary.activation[0] = relu (with cell=gru): activation applies")
    ok = sweeps.build(base, {"hidden_size": [8, 16]}, [0, 1], None, url=sqlite_url, points=points[:1])
    assert not ok.errors and [(s.cell, s.init.forget_bias, s.hidden_size) for s in ok.specs] == \
        [("lstm", 3.0, 8)] * 2 + [("lstm", 3.0, 16)] * 2


@pytest.mark.parametrize("text, points, error", [
    ("", [], None),
    ("- {cell: gru}\n- {cell: lstm, init.forget_bias: 3}", [{"cell": "gru"}, {"cell": "lstm", "init.forget_bias": 3}],
     None),
    ("- {optimizer.lr: 1e-3}", [{"optimizer.lr": 0.001}], None),          # 1e-3 read as a number, as in vary
    ("cell: lstm", None, "write one point a line"),
    ("- {}", None, "write one point a line"),
    ("- [1, 2", None, "could not read the points"),
    ("- {a: 1}\n" * 3000, None, "at most 20,000"),
])
def test_points_text_is_read_and_bounded(text, points, error):
    if error is None:
        assert sweeps.parse_points(text) == points
    else:
        with pytest.raises(ValueError, match=error):
            sweeps.parse_points(text)


def test_to_submit_skips_what_submit_plan_found(sqlite_url):
    from db import store

    base = parse_spec({"hidden_size": 8, "epochs": 1, "steps_per_epoch": 1}).to_dict()
    plan = sweeps.build(base, {"num_layers": [1, 2, 1]}, [0, 1], None, url=sqlite_url)
    assert plan.duplicates == [(0, 4), (1, 5)]
    assert len(sweeps.to_submit(plan, True)) == 4 and len(sweeps.to_submit(plan, False)) == 6
    store.create_runs([plan.specs[2]], url=sqlite_url)
    plan = sweeps.build(base, {"num_layers": [1, 2, 1]}, [0, 1], None, url=sqlite_url)
    kept = sweeps.to_submit(plan, True)
    assert 2 in plan.existing and len(kept) == 3 and plan.specs[2] not in kept


@pytest.mark.parametrize("times, workers, wall", [
    ([60.0], 1, 60.0),
    ([60.0], 4, 60.0),                   # one run never gets faster with more workers
    ([10.0] * 5, 2, 30.0),               # ⌈5 / 2⌉ = 3 waves
    ([10.0] * 4, 8, 10.0),
    ([100.0, 1.0, 1.0, 1.0], 2, 100.0),  # never less than the longest run
    ([1.0, 1.0, 4.0], 2, 5.0),           # in the queue's order: 1 | 1, then 4 on the first free worker
    ([], 3, 0.0),
])
def test_wall_time_schedules_whole_runs_on_the_workers(times, workers, wall):
    assert estimate.wall_seconds(times, workers) == pytest.approx(wall)
    if times:
        assert estimate.wall_seconds(times, workers) >= max(max(times), sum(times) / workers) - 1e-9


def test_describe_never_divides_one_run_across_workers():
    assert estimate.describe(600, 2) == "about 10 min of compute (≈ 10 min on 2 run slots)"
    assert estimate.describe(1200, 4, estimate.wall_seconds([600, 600], 4)) == (
        "about 20 min of compute (≈ 10 min on 4 run slots)")
    assert estimate.describe(math.inf, 2) == "unknown"


def _alias_bomb(levels: int) -> str:
    """&a [1 × 10], then each level a list of ten aliases of the one before: 10^(levels+1) values."""
    defs, prev = ["&a [1,1,1,1,1,1,1,1,1,1]"], "a"
    for i in range(levels):
        defs.append(f"&b{i} [" + ",".join([f"*{prev}"] * 10) + "]")
        prev = f"b{i}"
    return ", ".join(defs)


@pytest.mark.parametrize("parse, text", [
    (sweeps.parse_values, _alias_bomb(2)),
    (sweeps.parse_values, "&x rnn, *x"),
    (sweeps.parse_points, f"- {{x: [{_alias_bomb(2)}]}}"),
    (sweeps.parse_points, "- &p {cell: lstm}\n- *p"),
])
def test_builder_texts_refuse_yaml_aliases(parse, text):
    # a few levels of aliases stand for 10^(levels+1) values: refused before anything is expanded
    with pytest.raises(ValueError, match=r"aliases \(\*name\) are not allowed") as e:
        parse(text)
    assert len(str(e.value)) < 300


@pytest.mark.parametrize("parse, text", [
    (sweeps.parse_values, "{mode: norm, mode: value}"),
    (sweeps.parse_points, "- {cell: lstm, cell: gru}"),
])
def test_builder_texts_refuse_duplicate_keys(parse, text):
    with pytest.raises(ValueError, match="duplicate key 'mode'|duplicate key 'cell'"):
        parse(text)


def test_builder_alias_error_names_the_field(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard import auth

    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name="u", role="member"))

    def page():
        import streamlit as st

        from dashboard import sweeps

        st.session_state.setdefault("sw.fields", ["cell"])
        st.session_state.setdefault("sw.vals.cell", "&x rnn, *x")
        st.session_state.setdefault("sw.points", "- &p {cell: lstm}\n- *p")
        for e in sweeps.render_builder()[3]:
            st.write(f"E {e}")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    errors = [m.value for m in at.markdown if m.value.startswith("E ")]
    assert any(e.startswith("E vary.cell: ") and "aliases" in e for e in errors), errors
    assert any(e.startswith("E points: ") and "aliases" in e for e in errors), errors


def test_build_shows_a_path_below_a_plain_value_as_an_error(sqlite_url):
    base = parse_spec({}).to_dict()
    plan = sweeps.build({**base, "hidden_size": 8}, {"hidden_size.x": [1]}, [0], None, url=sqlite_url)
    assert not plan.specs
    assert "vary.hidden_size.x: hidden_size is a value (8), not a group of fields" in plan.errors
    plan = sweeps.build({**base, "cell": "rnn"}, {}, [0], None, url=sqlite_url, points=[{"cell.x": 1}])
    assert not plan.specs and "points[0].cell.x: cell is a value ('rnn'), not a group of fields" in plan.errors
