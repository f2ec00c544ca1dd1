"""The job spec: valid specs round-trip, every bad value is rejected with a message naming the field."""

import math

import pytest

from rnnlab.spec import (
    JobSpec,
    Limits,
    SpecError,
    SweepSpec,
    expand_sweep,
    find_duplicates,
    load,
    parse_spec,
    parse_sweep,
    sweep_size,
)


def test_defaults_are_valid_and_round_trip():
    spec = parse_spec({})
    again = parse_spec(spec.to_dict())
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()


def test_init_shorthand_sets_both_inits():
    spec = parse_spec({"init": "orthogonal"})
    assert spec.init.recurrent == "orthogonal" and spec.init.input == "orthogonal"


def test_name_does_not_change_hash():
    assert parse_spec({"name": "a"}).spec_hash() == parse_spec({"name": "b"}).spec_hash()
    assert parse_spec({"seed": 1}).spec_hash() != parse_spec({"seed": 2}).spec_hash()


@pytest.mark.parametrize(
    "data, field, hint",
    [
        ({"cell": "lstmx"}, "cell", "'rnn', 'lstm' or 'gru'"),
        ({"activation": "swish"}, "activation", "'tanh'"),
        ({"cell": "gru", "activation": "relu"}, "activation", "only to cell 'rnn'"),
        ({"hidden_size": -3}, "hidden_size", "greater than or equal to 1"),
        ({"hidden_size": "big"}, "hidden_size", "integer"),
        ({"num_layers": 9}, "num_layers", "less than or equal to 8"),
        ({"optimizer": {"lr": math.nan}}, "optimizer.lr", "finite"),
        ({"optimizer": {"lr": math.inf}}, "optimizer.lr", "finite"),
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "optimizer.momentum", "sgd"),
        ({"task": {"name": "addng"}}, "task.name", "adding, copy"),
        ({"task": {"name": "adding", "seq_len": 1}}, "task.seq_len", "greater than or equal to 2"),
        ({"task": {"name": "adding", "variant": "h97"}}, "task.variant", "'a16' or 'p13'"),
        ({"task": {"name": "adding", "variant": "p13", "seq_len": 9}}, "task.seq_len", "at least 10"),
        ({"task": {"name": "digits", "seq_len": 100}}, "task.seq_len", "64"),
        ({"task": {"name": "forecast", "series": "csv"}}, "task.path", "required"),
        ({"clip": {"mode": "norm"}}, "clip.max_norm", "required"),
        ({"clip": {"mode": "value", "clip_value": -1}}, "clip.clip_value", "greater than 0"),
        ({"clip": {"mode": "none", "max_norm": 1.0}}, "clip.max_norm", "applies only"),
        ({"init": {"recurrent": "zeros", "spectral_radius": 0.9}}, "init.spectral_radius", "zeros"),
        ({"init": {"recurrent": "glorot"}}, "init.recurrent", "'xavier_uniform'"),
        ({"init": {"forget_bias": 1.0}}, "init.forget_bias", "only to cell 'lstm'"),
        ({"leaky_slope": 0.1}, "leaky_slope", "leaky_relu"),
        ({"device": "tpu"}, "device", "'auto', 'cpu' or 'cuda'"),
        ({"epochs": 0}, "epochs", "greater than or equal to 1"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"hiden_size": 8}, "hiden_size", "unknown field"),
    ],
)
def test_bad_values_name_the_field(data, field, hint):
    with pytest.raises(SpecError) as ei:
        parse_spec(data)
    text = "\n".join(ei.value.errors)
    assert field in text, text
    assert hint in text, text


def test_all_errors_reported_at_once():
    with pytest.raises(SpecError) as ei:
        parse_spec({"cell": "x", "hidden_size": 0, "epochs": -1})
    assert len(ei.value.errors) == 3


def test_operator_limits():
    limits = Limits(max_hidden_size=64, max_work=10**6)
    with pytest.raises(SpecError) as ei:
        parse_spec({"hidden_size": 128}, limits)
    assert "hidden_size: got 128; the operator's limit is 64 (RNNLAB_MAX_HIDDEN_SIZE raises it)" in ei.value.errors
    with pytest.raises(SpecError) as ei:
        parse_spec({"hidden_size": 64, "batch_size": 64, "task": {"name": "adding", "seq_len": 1000}}, limits)
    assert "limit" in ei.value.errors[0] and "steps" in ei.value.errors[0] and "RNNLAB_MAX_WORK" in ei.value.errors[0]


def test_sweep_expands_to_grid_with_seeds():
    sweep = SweepSpec(
        base={"task": {"name": "adding"}, "epochs": 2},
        vary={"cell": ["rnn", "lstm", "gru"], "task.seq_len": [50, 100]},
        seeds=[0, 1, 2],
    )
    specs = expand_sweep(sweep)
    assert len(specs) == 3 * 2 * 3
    assert {(s.cell, s.task.seq_len, s.seed) for s in specs} == {
        (c, t, s) for c in ("rnn", "lstm", "gru") for t in (50, 100) for s in (0, 1, 2)
    }
    assert find_duplicates(specs) == []
    assert specs[0].name == "cell=rnn task.seq_len=50"   # each run named by its grid point


def test_sweep_run_names_tell_the_points_apart():
    sweep = SweepSpec(name="inits", base={"task": {"name": "adding", "seq_len": 30}},
                      vary={"init.recurrent": ["orthogonal", "identity"], "clip": [{"mode": "none"}]}, seeds=[0, 1])
    specs = expand_sweep(sweep)
    assert [s.name for s in specs] == ['inits · init.recurrent=orthogonal clip={"mode":"none"}'] * 2 + \
        ['inits · init.recurrent=identity clip={"mode":"none"}'] * 2
    assert specs[0].spec_hash() == parse_spec({**specs[0].to_dict(), "name": None}).spec_hash()   # not hashed
    long = expand_sweep(SweepSpec(name="x" * 195, vary={"hidden_size": [8]}))
    assert len(long[0].name) == 200 and long[0].name.endswith("…")
    assert expand_sweep(SweepSpec(seeds=[0]))[0].name is None                 # nothing to name


def test_sweep_reports_duplicates_and_bad_points():
    specs = expand_sweep(SweepSpec(vary={"hidden_size": [8, 8]}, seeds=[0]))
    assert find_duplicates(specs) == [(0, 1)]
    with pytest.raises(SpecError) as ei:
        expand_sweep(SweepSpec(vary={"cell": ["rnn", "lstm"]}, base={"activation": "relu"}))
    assert any("cell='lstm'" in e and "activation" in e for e in ei.value.errors)


def test_sweep_points_set_settings_together():
    """Explicit points × vary × seeds: an LSTM with its forget bias next to a GRU without one."""
    sweep = parse_sweep({"base": {"task": {"name": "adding", "seq_len": 20}},
                         "points": [{"cell": "gru"}, {"cell": "lstm", "init.forget_bias": 3}],
                         "vary": {"hidden_size": [8, 16]}, "seeds": [0, 1, 2]})
    specs = expand_sweep(sweep)
    assert len(specs) == 2 * 2 * 3 == sweep_size(sweep.vary, len(sweep.seeds), len(sweep.points))
    got = {(s.cell, s.init.forget_bias, s.hidden_size, s.seed) for s in specs}
    assert got == {(c, fb, h, seed) for c, fb in (("gru", None), ("lstm", 3.0)) for h in (8, 16) for seed in (0, 1, 2)}
    assert specs[0].name == "cell=gru hidden_size=8" and specs[-1].name == "cell=lstm init.forget_bias=3 hidden_size=16"
    # the same sweep without points is the plain product, as before
    assert len(expand_sweep(sweep.model_copy(update={"points": []}))) == 2 * 3


@pytest.mark.parametrize("points, vary, needle", [
    ([{}], {}, "points[0]: the point sets no field"),
    ([{"cell": "lstm"}], {"cell": ["rnn"]}, "points[0]: cell is also in vary"),
    ([{"cell": "gru"}, {"init..forget_bias": 1}], {}, "points[1]: 'init..forget_bias' is not a dotted field path"),
])
def test_bad_sweep_points_are_named(points, vary, needle):
    with pytest.raises(SpecError) as ei:
        parse_sweep({"points": points, "vary": vary})
    assert any(needle in e for e in ei.value.errors), ei.value.errors


def test_sweep_points_count_in_the_size_limit_before_expanding():
    sweep = SweepSpec(points=[{"hidden_size": h} for h in range(8, 18)], vary={"cell": ["rnn", "gru"]}, seeds=[0, 1])
    with pytest.raises(SpecError) as ei:
        expand_sweep(sweep, Limits(max_sweep_runs=39))
    assert "40 runs (10 points × 2 cell × 2 seeds)" in ei.value.errors[0]
    assert len(expand_sweep(sweep, Limits(max_sweep_runs=40))) == 40
    with pytest.raises(SpecError) as ei:   # a point that is invalid for its own settings is named
        expand_sweep(SweepSpec(points=[{"cell": "gru", "init.forget_bias": 1}]))
    assert any("init.forget_bias" in e and "cell='gru'" in e for e in ei.value.errors)


def test_sweep_init_path_on_top_of_shorthand():
    specs = expand_sweep(SweepSpec(base={"init": "xavier_normal"}, vary={"init.recurrent": ["orthogonal"]}))
    assert specs[0].init.recurrent == "orthogonal" and specs[0].init.input == "xavier_normal"


def test_load_yaml_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("cell: lstm\ntask: {name: copy, seq_len: 30}\ninit: {forget_bias: 1.0}\n")
    spec = load(p)
    assert isinstance(spec, JobSpec) and spec.task.seq_len == 30
    bad = tmp_path / "b.yaml"
    bad.write_text("cell: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load(bad)
    with pytest.raises(SpecError, match="file not found"):
        load(tmp_path / "missing.yaml")


def test_data_dir_confines_task_paths(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text.txt").write_text("abc")
    limits = Limits(data_dir=str(data))
    ok = parse_spec({"task": {"name": "charlm", "path": str(data / "text.txt")}}, limits)
    assert ok.task.path == str(data / "text.txt")
    for bad in ("/etc/passwd", str(data / ".." / "x.txt"), "text.txt"):
        with pytest.raises(SpecError) as ei:
            parse_spec({"task": {"name": "charlm", "path": bad}}, limits)
        assert ei.value.errors[0].startswith("task.path:") and "RNNLAB_DATA_DIR" in ei.value.errors[0]
    assert parse_spec({"task": {"name": "charlm", "path": "/etc/hostname"}}).task.path == "/etc/hostname"


@pytest.mark.parametrize("a, b", [
    ({}, {"activation": "tanh"}),                                                    # rnn's default activation
    ({"activation": "leaky_relu"}, {"activation": "leaky_relu", "leaky_slope": 0.01}),
    ({}, {"init": {"bias": "default"}}),                                             # bias resolved: both default
    ({"init": "orthogonal"}, {"init": {"recurrent": "orthogonal", "input": "orthogonal", "bias": "zeros"}}),
    ({"init": "orthogonal"}, {"init": {"recurrent": "orthogonal", "input": "orthogonal", "std": 0.5,
                                       "bound": 3.0, "scale": 2.0}}),                # unused init parameters
    ({"task": {"name": "digits"}}, {"task": {"name": "digits", "perm_seed": 7}}),    # no permutation
    ({"epochs": 3, "probe": {"every": 3}}, {"epochs": 3, "probe": {"every": 50}}),   # probe at 0 and 3 only
    ({"name": "a"}, {"name": "b"}),
])
def test_equivalent_specs_have_one_hash(a, b):
    assert parse_spec(a).spec_hash() == parse_spec(b).spec_hash()
    assert parse_spec(a).canonical() == parse_spec(b).canonical()


@pytest.mark.parametrize("a, b", [
    ({}, {"activation": "relu"}),
    ({"activation": "leaky_relu"}, {"activation": "leaky_relu", "leaky_slope": 0.2}),
    ({}, {"init": {"bias": "zeros"}}),                                               # not what 'default' resolves to
    ({"init": "normal"}, {"init": {"recurrent": "normal", "input": "normal", "std": 0.5}}),
    ({"task": {"name": "digits", "permuted": True}}, {"task": {"name": "digits", "permuted": True, "perm_seed": 7}}),
    ({"epochs": 4, "probe": {"every": 3}}, {"epochs": 4, "probe": {"every": 50}}),   # epoch 3 probed or not
    ({"device": "auto"}, {"device": "cpu"}),
])
def test_different_specs_keep_different_hashes(a, b):
    assert parse_spec(a).spec_hash() != parse_spec(b).spec_hash()


def test_runs_stored_under_the_old_hash_are_still_found(sqlite_url):
    from sqlalchemy import update

    from client.submit import plan
    from db import store
    from db.engine import session
    from db.models import Run

    written = parse_spec({"hidden_size": 8})
    (old,) = store.create_runs([written], url=sqlite_url)
    with session(sqlite_url, write=True) as s:   # as a row created before the canonical hash
        s.execute(update(Run).where(Run.id == old).values(spec_hash=written.legacy_hash()))
    assert written.legacy_hash() != written.spec_hash()
    (new,) = store.create_runs([parse_spec({"hidden_size": 8, "activation": "tanh"})], url=sqlite_url)
    p = plan(parse_spec({"hidden_size": 8}), url=sqlite_url)
    assert p.existing == {0: [old, new]}   # the old row (same text) and the new one (an equivalent spec)


def test_a_checkpoint_made_under_the_old_hash_still_resumes():
    # a run handed back by a worker of the previous version resumes on an upgraded one
    import io

    import torch

    from models import train

    spec = parse_spec({"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 2,
                       "steps_per_epoch": 2, "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"})
    cks = []
    train(spec, on_checkpoint=lambda e, b: cks.append(b))
    state = torch.load(io.BytesIO(cks[0]), weights_only=True)
    state["spec_hash"] = spec.legacy_hash()
    buf = io.BytesIO()
    torch.save(state, buf)
    assert train(spec, resume=buf.getvalue()).outcome == "succeeded"


@pytest.mark.parametrize("doc, needle", [
    ({"base": {"hidden_size": 8}, "vary": {"hidden_size.x": [1]}},
     "vary.hidden_size.x: hidden_size is a value (8), not a group of fields"),
    ({"base": {"task": {"name": "adding", "seq_len": 5}}, "vary": {"task.seq_len.x": [1, 2]}},
     "vary.task.seq_len.x: task.seq_len is a value (5), not a group of fields"),
    ({"base": {"cell": "rnn"}, "points": [{"cell.x": 1}]},
     "points[0].cell.x: cell is a value ('rnn'), not a group of fields"),
    ({"vary": {"cell": ["rnn"], "cell.x": [1]}}, "vary.cell.x: cell is a value ('rnn'), not a group of fields"),
])
def test_a_path_below_a_plain_value_is_a_spec_error(doc, needle):
    with pytest.raises(SpecError) as e:
        expand_sweep(parse_sweep(doc))
    assert needle in e.value.errors and len(e.value.errors) == 1


def test_a_path_below_a_group_or_an_unset_field_still_works():
    specs = expand_sweep(parse_sweep({"base": {"init": "orthogonal"}, "vary": {"init.recurrent": ["identity"],
                                                                             "clip.max_norm": [1.0]},
                                      "points": [{"clip.mode": "norm"}]}))
    assert (specs[0].init.recurrent, specs[0].init.input, specs[0].clip.max_norm) == ("identity", "orthogonal", 1.0)


def test_sweep_size_error_is_bounded_for_an_astronomical_grid():
    from rnnlab.spec import check_sweep_size

    vary = {f"field_{i}": [1, 2] for i in range(14_400)}   # 2^14400 runs: more than 4300 digits
    with pytest.raises(SpecError) as e:
        check_sweep_size(vary, 3, Limits())
    (msg,) = e.value.errors
    k = int(14_400 * math.log10(2) + math.log10(3))   # 4335: the run count has 4336 digits
    assert f"more than 10^{k} runs" in msg and "RNNLAB_MAX_SWEEP_RUNS" in msg
    assert "2 field_0 × 2 field_1" in msg and "field_5 " not in msg and "… and 14,395 more" in msg
    assert len(msg) < 400


def test_sweep_size_error_keeps_an_exact_count_when_it_is_readable():
    from rnnlab.spec import check_sweep_size

    with pytest.raises(SpecError, match=r"sweep: 1,200 runs \(4 points × 2 cell × 3 hidden_size × 50 seeds\)"):
        check_sweep_size({"cell": [1, 2], "hidden_size": [1, 2, 3]}, 50, Limits(), 4)
    check_sweep_size({"cell": [1, 2], "hidden_size": [1, 2, 3]}, 50, Limits(max_sweep_runs=300))  # exactly at it
    with pytest.raises(SpecError, match=r"sweep: 301 runs"):
        check_sweep_size({"a": [1] * 301}, 1, Limits(max_sweep_runs=300))


def test_the_seeds_error_names_a_few_bad_seeds_not_the_list():
    seeds = list(range(150_000))
    seeds[70_000], seeds[90_000], seeds[-1] = -5, -7, -1
    with pytest.raises(SpecError) as e:
        parse_sweep({"seeds": seeds})
    (msg,) = e.value.errors
    assert msg.startswith("seeds: 3 negative seeds (-5, -7, -1)") and "≥ 0" in msg and len(msg) < 200
    seeds = [-s for s in range(1, 21)]
    with pytest.raises(SpecError, match=r"seeds: 20 negative seeds \(-1, -2, -3, -4, -5, …\)"):
        parse_sweep({"seeds": seeds})


def test_a_file_with_points_but_no_base_is_a_sweep(tmp_path):
    from rnnlab.spec import is_sweep

    assert is_sweep({"points": [{"cell": "lstm"}]}) and not is_sweep({"hidden_size": 8})
    path = tmp_path / "p.yaml"
    path.write_text("points:\n- {cell: lstm}\n- {cell: gru}\n")
    sweep = load(path)
    assert isinstance(sweep, SweepSpec) and [s.cell for s in expand_sweep(sweep)] == ["lstm", "gru"]
    path.write_text("hidden_size: 8\npoints:\n- {cell: lstm}\n")
    with pytest.raises(SpecError) as e:
        load(path)
    assert any(m.startswith("hidden_size: ") and "base" in m for m in e.value.errors), e.value.errors
    assert not any(m.startswith("points:") for m in e.value.errors)


def test_a_bad_base_is_reported_once_before_anything_is_expanded(monkeypatch):
    import rnnlab.spec as spec_mod

    calls = []
    real = spec_mod.parse_spec
    monkeypatch.setattr(spec_mod, "parse_spec", lambda *a, **k: calls.append(1) or real(*a, **k))
    sweep = parse_sweep({"base": {"hidden_size": 8, "junk": list(range(1000))}, "vary": {"cell": ["rnn", "gru"]},
                         "seeds": list(range(50))})
    with pytest.raises(SpecError) as e:
        expand_sweep(sweep)
    assert e.value.errors == ["[base] junk: unknown field (check the spelling; see `rnnlab spec --example`)"]
    assert len(calls) <= 1
    # a base that is only incomplete without the varied values is not refused on its own
    ok = parse_sweep({"base": {"clip": {"mode": "norm"}}, "vary": {"clip.max_norm": [1.0, 2.0]}})
    assert [s.clip.max_norm for s in expand_sweep(ok)] == [1.0, 2.0]
    # a bad base value that every grid point replaces is no error
    over = parse_sweep({"base": {"hidden_size": 0, "clip": {"mode": "bogus"}},
                        "vary": {"hidden_size": [8]}, "points": [{"clip": "none"}]})
    assert [s.hidden_size for s in expand_sweep(over)] == [8]
    bad = parse_sweep({"base": {"hidden_size": 0}, "vary": {"cell": ["rnn", "gru"]}, "seeds": [0, 1, 2]})
    with pytest.raises(SpecError) as e:
        expand_sweep(bad)
    assert len(e.value.errors) == 1 and e.value.errors[0].startswith("[base] hidden_size: got 0")


def test_a_long_path_is_cut_in_the_message():
    path = "hidden_size" + ".a" * 90   # 191 characters: under MAX_SWEEP_PATH_CHARS, over the messages' cut
    with pytest.raises(SpecError) as e:
        expand_sweep(parse_sweep({"base": {"hidden_size": 8}, "vary": {path: [1]}}))
    (msg,) = e.value.errors
    assert msg.startswith("vary.hidden_size.a.a") and msg.endswith("hidden_size is a value (8), not a group of fields")
    assert len(msg) < 250
    # a longer one is refused when the sweep is parsed (tests/rnnlab/test_spec_bounds_sweep.py)
    with pytest.raises(SpecError, match="has 10,011 characters; a dotted field path has at most 200"):
        parse_sweep({"base": {"hidden_size": 8}, "vary": {"hidden_size" + ".a" * 5000: [1]}})
