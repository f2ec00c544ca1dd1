"""The depth study's reading of the per-layer gradient profiles ‖∂L/∂h_t^(k)‖ (grad_profiles), on runs
planted in a real database through db.store with known answers: ‖g_T‖ shrinking going down every stack
(reproduced), every layer alike (the profile check fails on every seed), one seed breaking it
(inconclusive). Each ‖g_T‖ number is re-derived by running its SQL, the profiles handed to the analysis
come from complete seeds only, and the report draws the profile figure from the stored values."""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import create_engine, text

import studies
from db import queries as q
from studies import report, svg
from studies.data import load
from tests.studies.helpers import plant

DEPTH = studies.get("depth")
ACT = studies.get("activations")
T = DEPTH.scale("cpu").base["task"]["seq_len"]
PROFILE_CHECK = 3   # the index of the check read from the profiles


def lr_good(n, k, s):   # log10 ‖g_1‖/‖g_T‖: rises going down the stack (the v1 checks hold)
    return -12.0 + (n - 1 - k) - 0.1 * s


def hz_good(n, k, s):   # horizon: longer going down, below T − 1
    return 10.0 + 3 * (n - 1 - k)


def shrinking(n, k, s):
    """‖g_T‖ of layer k (0 = the first) of an n-layer stack: 0.2 at the top, a third of it at each layer down,
    a little different per seed."""
    return (0.2 + 0.01 * s) * 3.0 ** (k + 1 - n)


def profile(last: float, log_ratio: float) -> list[float]:
    """A profile over t = 1..T falling geometrically from ‖g_1‖ = last · 10^log_ratio to ‖g_T‖ = last."""
    return [last * 10 ** (log_ratio * (T - t) / (T - 1)) for t in range(1, T + 1)]


def values(g_T, status=None):
    def one(spec):
        n, s = spec.num_layers, spec.seed
        out = {"layers0": [{"log_ratio": lr_good(n, k, s), "horizon": hz_good(n, k, s),
                            "grad_h": profile(g_T(spec.cell, n, k, s), lr_good(n, k, s))} for k in range(n)]}
        if status:
            out["status"] = status(spec.cell, n, s)
        return out
    return one


def decide(url, study=DEPTH):
    return study.decide(load(study, "cpu", url), "cpu")


def g_T_numbers(out):
    return [n for n in out.numbers if n.label.startswith("‖g_T‖")]


def group_key(group: str) -> tuple[str, int, int]:
    """'lstm 4 layers, layer 2' → ('lstm', 4, 1)."""
    stack, layer = group.split(", layer ")
    cell, n = stack.split()[:2]
    return cell, int(n), int(layer) - 1


def test_g_T_shrinking_down_every_stack_is_reproduced_with_the_planted_values(sqlite_url):
    plant(DEPTH, sqlite_url, values(lambda c, n, k, s: shrinking(n, k, s)))
    out = decide(sqlite_url)
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    assert "‖g_T‖" in out.checks[PROFILE_CHECK].text
    assert out.checks[PROFILE_CHECK].per_seed == {0: True, 1: True, 2: True}
    nums = g_T_numbers(out)
    assert len(nums) == 2 * (1 + 2 + 3 + 4)   # one per cell, stack and layer
    for num in nums:
        _, n, k = group_key(num.group)
        assert num.per_seed == pytest.approx({s: shrinking(n, k, s) for s in (0, 1, 2)}, rel=1e-12), num.group


def test_every_layer_alike_fails_the_profile_check_on_every_seed(sqlite_url):
    # the v1 checks hold; only the last-step norm is the same at every layer: nothing shrinks going down
    plant(DEPTH, sqlite_url, values(lambda c, n, k, s: 0.1))
    out = decide(sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert [all(c.per_seed.values()) for c in out.checks] == [True, True, True, False]
    assert out.checks[PROFILE_CHECK].per_seed == {0: False, 1: False, 2: False}


def test_g_T_growing_down_the_stack_fails_the_profile_check(sqlite_url):
    plant(DEPTH, sqlite_url, values(lambda c, n, k, s: shrinking(n, n - 1 - k, s)))
    out = decide(sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert out.checks[PROFILE_CHECK].per_seed == {0: False, 1: False, 2: False}


def test_one_seed_with_one_layer_out_of_order_is_inconclusive(sqlite_url):
    # seed 1, LSTM with 3 layers: layer 2 gets a larger ‖g_T‖ than layer 3 above it; everything else shrinks
    def g_T(c, n, k, s):
        return 0.5 if (c, n, k, s) == ("lstm", 3, 1, 1) else shrinking(n, k, s)

    plant(DEPTH, sqlite_url, values(g_T))
    out = decide(sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and "holds on seeds 0, 2 and fails on 1" in out.reason
    assert out.checks[PROFILE_CHECK].per_seed == {0: True, 1: False, 2: True}
    assert [all(c.per_seed.values()) for c in out.checks[:PROFILE_CHECK]] == [True, True, True]


def test_each_g_T_number_is_rederived_by_its_sql(db_url):
    # both backends: the SQL reads the last entry of the stored JSON profile
    plant(DEPTH, db_url, values(lambda c, n, k, s: shrinking(n, k, s) * (1.5 if c == "lstm" else 1.0)))
    out = decide(db_url)
    nums = g_T_numbers(out)
    (sql,) = {n.sql for n in nums}
    with create_engine(db_url).connect() as c:
        rows = c.execute(text(sql)).mappings().all()
    assert len(rows) == 3 * 2 * (1 + 2 + 3 + 4)
    from_sql = {(r["grp"], int(r["num_layers"]), int(r["layer"]), int(r["seed"])): float(r["last_step_norm"])
                for r in rows}
    for num in nums:
        cell, n, k = group_key(num.group)
        got = {s: from_sql[(cell, n, k, s)] for s in num.per_seed}
        assert got == pytest.approx(num.per_seed, rel=1e-12), num.group
        # and both equal the planted value (full float64 precision survives the round trip)
        assert got == pytest.approx({s: shrinking(n, k, s) * (1.5 if cell == "lstm" else 1.0) for s in got},
                                    rel=1e-12)


NONFINITE = {("rnn", 2, 0, 0): math.nan, ("lstm", 3, 1, 1): math.inf, ("lstm", 4, 3, 2): math.nan,
             ("rnn", 4, 0, 2): math.inf}


def same_float(a: float | None, b: float) -> bool:
    """a == b, a NaN equal to a NaN, and a NULL (None: how SQLite returns a NaN) equal to a NaN."""
    a = math.nan if a is None else float(a)
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_a_non_finite_g_T_is_the_same_in_its_sql_and_in_the_number(db_url):
    # a stored 'NaN' or 'Infinity' as a profile's last entry: the SQL must not read it as 0 (SQLite's CAST did)
    def g_T(c, n, k, s):
        return NONFINITE.get((c, n, k, s), shrinking(n, k, s))

    plant(DEPTH, db_url, values(g_T))
    out = decide(db_url)
    nums = g_T_numbers(out)
    (sql,) = {n.sql for n in nums}
    with create_engine(db_url).connect() as c:
        rows = c.execute(text(sql)).mappings().all()
    from_sql = {(r["grp"], int(r["num_layers"]), int(r["layer"]), int(r["seed"])): r["last_step_norm"] for r in rows}
    assert len(from_sql) == 3 * 2 * (1 + 2 + 3 + 4)
    for num in nums:
        cell, n, k = group_key(num.group)
        for s, v in num.per_seed.items():
            planted = g_T(cell, n, k, s)
            # the number is the planted value (NaN stays NaN, ∞ stays ∞) …
            assert same_float(v, planted), (num.group, s, v, planted)
            # … and so is what its SQL returns, on either backend (a NaN as NULL on SQLite, as NaN on Postgres)
            assert same_float(from_sql[(cell, n, k, s)], planted), (num.group, s, from_sql[(cell, n, k, s)])
    assert {type(from_sql[key]) for key in NONFINITE if math.isinf(NONFINITE[key])} == {float}


def test_json_float_reads_every_stored_name_as_db_queries_does(db_url):
    # the text of a JSON profile entry as ->> gives it, against db.codec's encoding of the float it stands for
    from db.codec import compact
    from studies import sql as study_sql

    cases = [math.nan, math.inf, -math.inf, 0.0, 1.5e-300, 0.1234567890123456789, 7e307]
    with create_engine(db_url).connect() as c:
        for x in cases:
            stored = str(compact(x)) if not math.isfinite(x) else repr(x)
            got = c.execute(text(f"SELECT {study_sql.json_float('v')} AS x FROM (SELECT CAST(:v AS TEXT) AS v) AS t"),
                            {"v": stored}).scalar()
            assert same_float(got, x), (stored, got)


def test_analysis_gets_only_complete_seeds_profiles_and_other_studies_load_none(sqlite_url):
    plant(DEPTH, sqlite_url, values(lambda c, n, k, s: shrinking(n, k, s),
                                    status=lambda c, n, s: "failed" if (c, n, s) == ("rnn", 2, 0) else "succeeded"))
    data = load(DEPTH, "cpu", sqlite_url)
    seen = {}

    def spy(study, d):
        seen["data"] = d
        return DEPTH.analyse(study, d)

    out = dataclasses.replace(DEPTH, analyse=spy).decide(data, "cpu")
    assert out.seeds_complete == [1, 2]
    seed0 = set(data.runs.loc[data.runs["seed"] == 0, "id"])
    assert seed0 & set(data.profiles["run_id"])     # loaded (the finished runs of seed 0 have profiles) …
    sub = seen["data"]
    assert set(sub.profiles["run_id"]) == set(sub.runs["id"])   # … but not handed to the analysis
    assert not seed0 & set(sub.profiles["run_id"])
    assert set(sub.runs["seed"]) == {1, 2}
    # every layer of every run at epoch 0, every step
    assert set(data.profiles["epoch"]) == {0}
    per_run = data.profiles.groupby(["run_id", "layer"]).size()
    assert set(per_run) == {T}
    n_layers = {int(i): int(n) for i, n in zip(data.runs["id"], data.runs["num_layers"])}
    assert {i: int(g["layer"].max()) + 1 for i, g in data.profiles.groupby("run_id")} == \
        {i: n for i, n in n_layers.items() if i in set(data.profiles["run_id"])}

    # a study that does not ask for profiles loads none, though the database holds them
    plant(ACT, sqlite_url, lambda spec: {})
    act = load(ACT, "cpu", sqlite_url)
    assert ACT.profiles_at == () and act.profiles.empty and len(act.runs) == 9


def test_report_draws_the_profile_figure_from_the_stored_profiles(sqlite_url):
    plant(DEPTH, sqlite_url, values(lambda c, n, k, s: shrinking(n, k, s)))
    out = decide(sqlite_url)
    figs = [f for f in out.figures if "‖∂L/∂h_t‖ at initialization, per layer" in f.title]
    assert [f.title.split(",")[0] for f in figs] == ["tanh RNN", "LSTM"]
    lstm = figs[1]
    assert lstm.log_y and not lstm.categorical_x
    assert {s.group for s in lstm.series} == {"layer 1", "layer 2", "layer 3", "layer 4"}
    assert len(lstm.series) == 4 * 3   # a line per layer and seed
    # the independent read: db.queries.profiles of that run, layer by layer
    runs = load(DEPTH, "cpu", sqlite_url).runs
    rid = int(runs.loc[(runs["cell"] == "lstm") & (runs["num_layers"] == 4) & (runs["seed"] == 1), "id"].iloc[0])
    eng = q.engine_for(sqlite_url)
    for k in range(4):
        p = q.profiles([rid], epoch=0, layer=k, kind="h", max_points=10_000, engine=eng)
        line = next(s for s in lstm.series if s.name == f"layer {k + 1} s1")
        assert line.x == [int(t) for t in p["t"]] == list(range(1, T + 1))
        assert line.y == [float(v) for v in p["norm"]]
        assert line.y[-1] == pytest.approx(shrinking(4, k, 1), rel=1e-12)
        assert math.log10(line.y[0] / line.y[-1]) == pytest.approx(lr_good(4, k, 1))
    # the report renders every figure as well-formed SVG, the profile figures with a path per line
    page = report.html(DEPTH, out, url=sqlite_url, code_version="test")
    assert page.count("<svg") == len(out.figures)
    for f in figs:
        drawn = svg.render(f)
        root = ET.fromstring(drawn)
        titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
        assert sorted(titles) == sorted(s.name for s in f.series)
        assert drawn in page
    md = report.markdown(DEPTH, out, url=sqlite_url, code_version="test")
    assert "grad_profiles" in md and DEPTH.claim in md


def test_load_names_each_run_by_its_grid_point_when_a_scale_has_explicit_points(sqlite_url):
    # studies.data.load labels runs as Study.points does, also for explicit points (which set several fields)
    sc = ACT.scale("cpu")
    pts = ({"activation": "tanh"}, {"activation": "relu", "init.recurrent": "orthogonal"})
    study = dataclasses.replace(ACT, version=99, scales={"cpu": dataclasses.replace(sc, vary={}, points=pts)},
                                analyse=lambda st, d: ([], [], []))
    plant(study, sqlite_url, lambda spec: {})
    data = load(study, "cpu", sqlite_url)
    assert study.points("cpu") == ["activation=tanh", "activation=relu init.recurrent=orthogonal"]
    assert sorted(data.runs["point"]) == sorted(study.points("cpu") * 3)
    assert set(data.runs.loc[data.runs["point"] == study.points("cpu")[1], "init.recurrent"]) == {"orthogonal"}
    assert study.decide(data, "cpu").seeds_complete == [0, 1, 2]
