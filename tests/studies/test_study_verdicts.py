"""Study verdicts from stored runs (real SQLite through db.store and db.queries, no mocks), on cases
whose answer is known: the claim holds on every seed, on none ("nothing worked"), on some; too few
complete seeds; runs still open. The numbers and the SQL that re-derives them are checked against the
planted values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import create_engine, text

import studies
from studies.core import Number, Scale, Study
from studies.data import load
from tests.studies.helpers import plant

ACT = studies.get("activations")
INIT = studies.get("recurrent-init")
ADD = studies.get("adding")

# log ratio and horizon per activation where the claim holds (seed added so seeds differ)
GOOD = {"sigmoid": (-30.0, 4.0), "tanh": (-1.0, 49.0), "relu": (-0.2, 49.0)}


def act_values(table, status=None):
    def values(spec):
        lr, hz = table(spec.activation, spec.seed)
        out = {"log_ratio0": lr, "horizon0": hz}
        if status:
            out["status"] = status(spec.activation, spec.seed)
        return out
    return values


def decide(study, url):
    return study.decide(load(study, "cpu", url), "cpu")


def test_claim_holding_on_every_seed_is_reproduced_and_numbers_are_the_stored_ones(sqlite_url):
    plant(ACT, sqlite_url, act_values(lambda a, s: (GOOD[a][0] - 0.1 * s, GOOD[a][1])))
    out = decide(ACT, sqlite_url)
    assert out.verdict == studies.REPRODUCED, out.reason
    assert out.seeds_complete == [0, 1, 2] and out.counts == {"succeeded": 9}
    tanh = next(n for n in out.numbers if n.group == "tanh" and n.label.startswith("log10"))
    assert tanh.per_seed == {0: -1.0, 1: pytest.approx(-1.1), 2: pytest.approx(-1.2)}
    # the interval against an independent computation (scipy's t quantile)
    s = tanh.summary()
    v = np.array([-1.0, -1.1, -1.2])
    half = stats.t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3)
    assert s["mean"] == pytest.approx(-1.1) and s["lo"] == pytest.approx(-1.1 - half, rel=1e-3)
    assert s["hi"] == pytest.approx(-1.1 + half, rel=1e-3)


def test_sql_of_each_number_rederives_its_values(sqlite_url):
    plant(ACT, sqlite_url, act_values(lambda a, s: (GOOD[a][0] - 0.1 * s, GOOD[a][1] - s)))
    out = decide(ACT, sqlite_url)
    eng = create_engine(sqlite_url)
    for n in out.numbers:
        col = "log_ratio" if n.label.startswith("log10") else "horizon"
        with eng.connect() as c:
            rows = c.execute(text(n.sql)).mappings().all()
        got = {r["seed"]: r[col] for r in rows if r["grp"] == n.group}
        assert got == pytest.approx(n.per_seed), n.label


def test_nothing_worked_is_not_reproduced(sqlite_url):
    # every activation vanishes alike: no strict ordering on any seed
    plant(ACT, sqlite_url, act_values(lambda a, s: (-5.0, 10.0)))
    out = decide(ACT, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert all(not v for c in out.checks for v in c.per_seed.values())


def test_reversed_order_on_one_seed_is_inconclusive(sqlite_url):
    def table(a, s):
        lr, hz = GOOD[a]
        return (-lr - 31 if s == 1 else lr), hz   # seed 1: sigmoid now on top
    plant(ACT, sqlite_url, act_values(table))
    out = decide(ACT, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE
    assert "holds on seeds 0, 2 and fails on 1" in out.reason


def test_a_failed_run_leaves_too_few_seeds(sqlite_url):
    plant(ACT, sqlite_url, act_values(lambda a, s: GOOD[a],
                                      status=lambda a, s: "failed" if (a, s) == ("relu", 2) else "succeeded"))
    out = decide(ACT, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and out.seeds_complete == [0, 1]
    assert "only 2 complete seed(s)" in out.reason


def test_open_runs_are_pending_and_nothing_is_pending_without_runs(sqlite_url):
    assert decide(ACT, sqlite_url).verdict == studies.PENDING
    plant(ACT, sqlite_url, act_values(lambda a, s: GOOD[a],
                                      status=lambda a, s: "queued" if s == 2 else "succeeded"))
    out = decide(ACT, sqlite_url)
    assert out.verdict == studies.PENDING and "3 of 9 runs" in out.reason


def test_runs_of_another_version_or_scale_are_not_counted(sqlite_url):
    plant(ACT, sqlite_url, act_values(lambda a, s: GOOD[a]))
    other = Study(name="activations", version=2, title="", claim="", source="", group_by="activation",
                  scales=ACT.scales, analyse=ACT.analyse)
    assert decide(other, sqlite_url).verdict == studies.PENDING
    assert ACT.decide(load(ACT, "paper", sqlite_url), "paper").verdict == studies.PENDING


def test_zero_init_minus_infinity_round_trips_and_decides(sqlite_url):
    rho = {"zeros": 0.0, "xavier_uniform": 1.07, "kaiming": 1.5, "orthogonal": 1.0, "identity": 1.0}
    lr0 = {"zeros": -math.inf, "xavier_uniform": -0.4, "kaiming": 1.5, "orthogonal": -2.0, "identity": -0.8}

    def values(spec):
        i = spec.init.recurrent
        return {"rho0": rho[i], "log_ratio0": lr0[i], "rho_last": rho[i] + 0.4, "log_ratio_last": -6.0}
    plant(INIT, sqlite_url, values)
    out = decide(INIT, sqlite_url)
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    zero = next(n for n in out.numbers if n.group == "zeros" and n.label == "log10 ‖g_1‖/‖g_T‖ at init")
    assert zero.per_seed == {0: -math.inf, 1: -math.inf, 2: -math.inf}
    assert zero.summary()["mean"] == -math.inf and zero.text().startswith("−∞")


def test_zero_init_that_stays_zero_is_not_reproduced(sqlite_url):
    # the false preset text: "zero init keeps h ≡ 0", i.e. W_hh never moves; that check must fail
    def values(spec):
        zero = spec.init.recurrent == "zeros"
        return {"rho0": 0.0 if zero else 1.0, "log_ratio0": -math.inf if zero else -1.0,
                "rho_last": 0.0 if zero else 1.0, "log_ratio_last": -math.inf if zero else -1.0}
    plant(INIT, sqlite_url, values)
    out = decide(INIT, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    after = next(c for c in out.checks if c.text.startswith("zero W_hh after training"))
    assert after.per_seed == {0: False, 1: False, 2: False}


@pytest.mark.parametrize(("losses", "verdict"), [
    ({"rnn": 0.17, "lstm": 0.001, "gru": 0.0005}, studies.REPRODUCED),
    ({"rnn": 0.17, "lstm": 0.17, "gru": 0.16}, studies.NOT_REPRODUCED),     # nothing learned
    ({"rnn": 0.001, "lstm": 0.001, "gru": 0.001}, studies.NOT_REPRODUCED),  # the tanh RNN solved it too
])
def test_adding_verdicts(sqlite_url, losses, verdict):
    plant(ADD, sqlite_url, lambda spec: {"val_loss": losses[spec.cell]})
    out = decide(ADD, sqlite_url)
    assert out.verdict == verdict
    lstm = next(n for n in out.numbers if n.group == "lstm")
    assert lstm.per_seed[0] == pytest.approx(losses["lstm"] * 6)   # ÷ the stored baseline 1/6


def test_a_diverged_run_counts_as_finished_with_its_nan_loss(sqlite_url):
    plant(ADD, sqlite_url, lambda spec: {"val_loss": math.nan, "status": "diverged"} if spec.cell == "lstm"
          else {"val_loss": 0.001 if spec.cell == "gru" else 0.17})
    out = decide(ADD, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED and out.counts == {"succeeded": 6, "diverged": 3}
    assert next(n for n in out.numbers if n.group == "lstm").text() == "NaN on every seed (no finite value)"


def test_study_definitions_are_checked():
    sc = Scale(base={}, vary={"cell": ["rnn"]}, seeds=(0, 1))
    with pytest.raises(ValueError, match="at least 3"):
        Study(name="x", version=1, title="", claim="", source="", scales={"cpu": sc}, analyse=None, group_by="cell")
    with pytest.raises(ValueError, match="lowercase"):
        Study(name="Bad Name", version=1, title="", claim="", source="", scales={}, analyse=None, group_by="cell")
    with pytest.raises(ValueError, match="known studies: activations"):
        studies.get("nope")
    with pytest.raises(ValueError, match="scale: got 'gpu'"):
        ACT.tag("gpu")


def test_every_builtin_study_expands_and_has_three_seeds_per_scale():
    for st in studies.STUDIES.values():
        assert st.claim and st.source and {"cpu", "paper"} <= set(st.scales)
        for scale in st.scales:
            specs = st.specs(scale)
            assert len(specs) == st.n_runs(scale) and len({s.seed for s in specs}) >= 3


def test_interval_of_two_values_uses_t_with_one_degree_of_freedom():
    n = Number("x", "g", {0: 1.0, 1: 3.0}, "")
    s = n.summary()
    assert s["hi"] - s["mean"] == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2), rel=1e-3)


EXP = studies.get("exploding")
B = 1 / 6


@pytest.mark.parametrize(("clipped_losses", "verdict"), [
    ([300 * B, 2 * B, 0.7 * B, 0.5 * B, 0.6 * B, 0.55 * B], studies.REPRODUCED),
    ([300 * B, 2 * B, 1.1 * B, 0.9 * B, 1.0 * B, 1.2 * B], studies.NOT_REPRODUCED),   # v1's outcome: back to the
    ([300 * B, 2 * B, 0.9 * B, 0.78 * B, 0.82 * B, 0.85 * B], studies.NOT_REPRODUCED),  # baseline only; 0.835 > 0.8
    ([300 * B, 50 * B, 9 * B, 6 * B, 8 * B, 7 * B], studies.NOT_REPRODUCED),   # clipping did not help either
])
def test_exploding_verdicts(sqlite_url, clipped_losses, verdict):
    def values(spec):
        if spec.clip.mode == "none":
            return {"status": "diverged", "val_losses": [300 * B, math.nan], "nonfinite": [0, 1]}
        return {"val_losses": clipped_losses}
    plant(EXP, sqlite_url, values)
    out = decide(EXP, sqlite_url)
    assert out.verdict == verdict, [(c.text, c.per_seed) for c in out.checks]
    final = next(n for n in out.numbers if n.group == "norm ≤ 1" and n.label.startswith("final"))
    assert final.per_seed[0] == pytest.approx(float(np.median(clipped_losses[-4:])) / B)


def test_exploding_with_no_divergence_is_not_reproduced(sqlite_url):
    # the old preset's outcome: without clipping nothing diverges, the net saturates at the baseline
    plant(EXP, sqlite_url, lambda spec: {"val_losses": [300 * B, 1.0 * B, 1.0 * B, 1.0 * B, 1.0 * B, 1.0 * B]})
    out = decide(EXP, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert next(c for c in out.checks if c.text.startswith("without clipping")).per_seed == {0: False, 1: False,
                                                                                             2: False}


IRNN = studies.get("irnn")


@pytest.mark.parametrize(("irnn_loss", "verdict"), [(0.005, studies.REPRODUCED), (0.16, studies.NOT_REPRODUCED)])
def test_irnn_verdict_reads_the_two_diagonal_arms(sqlite_url, irnn_loss, verdict):
    losses = {("relu", "identity"): irnn_loss, ("relu", "default"): 0.001,   # off-diagonal arms do not count
              ("tanh", "identity"): 0.001, ("tanh", "default"): 0.17}
    plant(IRNN, sqlite_url, lambda spec: {"val_loss": losses[(spec.activation, spec.init.recurrent)]})
    out = decide(IRNN, sqlite_url)
    assert out.verdict == verdict
    arm = next(n for n in out.numbers if n.group == "relu + identity")
    assert arm.per_seed == pytest.approx({0: irnn_loss * 6, 1: irnn_loss * 6, 2: irnn_loss * 6})


COPY = studies.get("copy")
COPY_BASE = 10 * math.log(8) / 220


@pytest.mark.parametrize(("lstm_ratio", "baseline", "verdict"), [
    (1.02, COPY_BASE, studies.REPRODUCED),
    (0.5, COPY_BASE, studies.NOT_REPRODUCED),            # the LSTM beat the baseline: no plateau
    (1.0, 10 * math.log(8) / 200, studies.NOT_REPRODUCED),  # a baseline computed with T instead of T + 20
])
def test_copy_verdicts(sqlite_url, lstm_ratio, baseline, verdict):
    plant(COPY, sqlite_url, lambda spec: {"baseline": baseline,
                                          "val_loss": baseline * (lstm_ratio if spec.cell == "lstm" else 0.97)})
    out = decide(COPY, sqlite_url)
    assert out.verdict == verdict, [(c.text, c.per_seed) for c in out.checks]


DEPTH = studies.get("depth")


def depth_values(lr, hz, status=None, g_T=lambda n, k, s: 0.2 * 2.0 ** (k + 1 - n)):
    """Per-layer log ratio and horizon at init: ``lr(n, k, seed)``, ``hz(n, k, seed)`` for layer k of n; the
    stored profile of layer k falls geometrically from ‖g_T‖ = ``g_T(n, k, seed)`` (by default halving at each
    layer down the stack) to ‖g_1‖ = ‖g_T‖ · 10^lr."""
    def profile(T, last, log_ratio):
        return [last * 10 ** (log_ratio * (T - t) / (T - 1)) for t in range(1, T + 1)]

    def values(spec):
        n, T = spec.num_layers, spec.task.seq_len
        out = {"layers0": [{"log_ratio": lr(n, k, spec.seed), "horizon": hz(n, k, spec.seed),
                            "grad_h": profile(T, g_T(n, k, spec.seed), lr(n, k, spec.seed))} for k in range(n)]}
        if status:
            out["status"] = status(spec.cell, n, spec.seed)
        return out
    return values


def test_depth_reproduced_when_lower_layers_keep_more_and_sql_rederives_every_layer(sqlite_url):
    plant(DEPTH, sqlite_url, depth_values(lambda n, k, s: -12.0 + (n - 1 - k) - 0.1 * s,
                                          lambda n, k, s: 10.0 + 3 * (n - 1 - k)))
    out = decide(DEPTH, sqlite_url)
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    first = next(n for n in out.numbers if n.group == "lstm 4 layers, layer 1" and n.label.startswith("log10"))
    assert first.per_seed == pytest.approx({0: -9.0, 1: -9.1, 2: -9.2})
    top = next(n for n in out.numbers if n.group == "rnn 3 layers, layer 3" and n.label.startswith("horizon"))
    assert top.per_seed == {0: 10.0, 1: 10.0, 2: 10.0}
    eng = create_engine(sqlite_url)
    with eng.connect() as c:
        rows = c.execute(text(first.sql)).mappings().all()
    got = {r["seed"]: r["log_ratio"] for r in rows if (r["grp"], r["num_layers"], r["layer"]) == ("lstm", 4, 0)}
    assert got == pytest.approx(first.per_seed)


def test_depth_that_changes_nothing_is_not_reproduced(sqlite_url):
    # every layer of every stack the same: nothing is gained going down, on any seed
    plant(DEPTH, sqlite_url, depth_values(lambda n, k, s: -10.0, lambda n, k, s: 12.0, g_T=lambda n, k, s: 0.1))
    out = decide(DEPTH, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert [all(c.per_seed.values()) for c in out.checks] == [False, False, True, False]


def test_depth_with_a_horizon_reaching_the_start_fails_its_bound(sqlite_url):
    plant(DEPTH, sqlite_url, depth_values(lambda n, k, s: -12.0 + (n - 1 - k),
                                          lambda n, k, s: 49.0 if (n, k, s) == (4, 0, 1) else 10.0 + 3 * (n - 1 - k)))
    out = decide(DEPTH, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and "holds on seeds 0, 2 and fails on 1" in out.reason
    assert out.checks[2].per_seed == {0: True, 1: False, 2: True}


def test_depth_with_a_failed_run_has_too_few_seeds(sqlite_url):
    plant(DEPTH, sqlite_url, depth_values(lambda n, k, s: -12.0 + (n - 1 - k), lambda n, k, s: 10.0 + 3 * (n - 1 - k),
                                          status=lambda c, n, s: "failed" if (c, n, s) == ("rnn", 3, 0) else
                                          "succeeded"))
    out = decide(DEPTH, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and out.seeds_complete == [1, 2]
    assert "only 2 complete seed(s)" in out.reason


SEQ = studies.get("seq-len")
_SEQ_T = SEQ.scales["cpu"].vary["task.seq_len"]
T_LO, T_MID, T_HI = _SEQ_T[0], _SEQ_T[1], _SEQ_T[-1]


def seq_values(ratio, horizon=lambda cell, T, s: 12.0 if cell == "rnn" else 10.0,
               log_ratio=lambda cell, T, s: -0.2 * T, status=None):
    """Planted seq-len runs: final val loss ÷ baseline ``ratio(cell, T, seed)`` (the stored baseline is 1/6),
    the horizon and the log ratio at init."""
    def values(spec):
        c, T, s = spec.cell, spec.task.seq_len, spec.seed
        out = {"val_loss": ratio(c, T, s) / 6, "horizon0": horizon(c, T, s), "log_ratio0": log_ratio(c, T, s),
               "horizon_last": T - 1.0}
        if status:
            out["status"] = status(c, T, s)
        return out
    return values


def seq_good(cell, T, s):
    return 0.01 if cell == "lstm" else (0.1 if T == T_LO else 0.95 + 0.01 * s)


def test_seq_len_reproduced_and_numbers_are_per_cell_and_length(sqlite_url):
    plant(SEQ, sqlite_url, seq_values(seq_good))
    out = decide(SEQ, sqlite_url)
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    rnn_hi = next(n for n in out.numbers if n.group == f"rnn T={T_HI}" and n.label.startswith("final"))
    assert rnn_hi.per_seed == pytest.approx({0: 0.95, 1: 0.96, 2: 0.97})
    lr = next(n for n in out.numbers if n.group == f"lstm T={T_MID}" and n.label.startswith("log10"))
    assert lr.per_seed == pytest.approx({0: -0.2 * T_MID, 1: -0.2 * T_MID, 2: -0.2 * T_MID})
    eng = create_engine(sqlite_url)
    with eng.connect() as c:
        rows = c.execute(text(rnn_hi.sql)).mappings().all()
    assert {r["seed"]: r["ratio"] for r in rows if (r["grp"], r["seq_len"]) == ("rnn", T_HI)} == \
        pytest.approx(rnn_hi.per_seed)


def test_seq_len_nothing_worked_is_not_reproduced(sqlite_url):
    # the LSTM stays at the baseline too, and the horizon at init spans the whole sequence at every T
    plant(SEQ, sqlite_url, seq_values(lambda c, T, s: 1.0, horizon=lambda c, T, s: T - 1.0))
    out = decide(SEQ, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert [all(c.per_seed.values()) for c in out.checks] == [False, True, False, True]


def test_seq_len_lstm_failing_at_the_longest_t_on_one_seed_is_inconclusive(sqlite_url):
    plant(SEQ, sqlite_url, seq_values(lambda c, T, s: 0.8 if (c, T, s) == ("lstm", T_HI, 2) else seq_good(c, T, s)))
    out = decide(SEQ, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and "holds on seeds 0, 1 and fails on 2" in out.reason


def test_seq_len_tanh_solving_the_longest_t_is_not_reproduced(sqlite_url):
    plant(SEQ, sqlite_url, seq_values(lambda c, T, s: 0.01))
    out = decide(SEQ, sqlite_url)
    assert out.verdict == studies.NOT_REPRODUCED
    assert out.checks[3].per_seed == {0: False, 1: False, 2: False}


def test_seq_len_with_a_failed_run_has_too_few_seeds(sqlite_url):
    plant(SEQ, sqlite_url, seq_values(seq_good, status=lambda c, T, s: "failed" if (c, T, s) == ("lstm", T_MID, 1)
                                      else "succeeded"))
    out = decide(SEQ, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and out.seeds_complete == [0, 2]


ORDER = studies.get("temporal-order")


def order_values(acc, status=None):
    """Planted temporal-order runs: final held-out accuracy ``acc(cell, seed)``."""
    def values(spec):
        out = {"val_metric": acc(spec.cell, spec.seed), "val_loss": 0.5}
        if status:
            out["status"] = status(spec.cell, spec.seed)
        return out
    return values


@pytest.mark.parametrize(("accs", "verdict"), [
    ({"rnn": 0.26, "lstm": 0.992, "gru": 0.995}, studies.REPRODUCED),
    ({"rnn": 0.26, "lstm": 0.25, "gru": 0.995}, studies.NOT_REPRODUCED),   # the LSTM learned nothing (v2's case)
    ({"rnn": 0.25, "lstm": 1.0, "gru": 0.26}, studies.NOT_REPRODUCED),     # the GRU learned nothing
    ({"rnn": 0.25, "lstm": 0.25, "gru": 0.25}, studies.NOT_REPRODUCED),    # nothing learned anything
    ({"rnn": 0.5, "lstm": 1.0, "gru": 1.0}, studies.NOT_REPRODUCED),       # the tanh RNN left chance
    ({"rnn": 0.25, "lstm": 1.0, "gru": 0.985}, studies.NOT_REPRODUCED),    # 1.5% wrong is not solved
])
def test_temporal_order_verdicts(sqlite_url, accs, verdict):
    plant(ORDER, sqlite_url, order_values(lambda c, s: accs[c]))
    out = decide(ORDER, sqlite_url)
    assert out.verdict == verdict, [(c.text, c.per_seed) for c in out.checks]
    lstm = next(n for n in out.numbers if n.group == "lstm")
    assert [c.per_seed for c in out.checks] == [{s: ok for s in (0, 1, 2)} for ok in
                                                (accs["gru"] >= 0.99, accs["lstm"] >= 0.99, accs["rnn"] <= 0.35)]
    assert lstm.per_seed == pytest.approx({0: accs["lstm"], 1: accs["lstm"], 2: accs["lstm"]})
    eng = create_engine(sqlite_url)
    with eng.connect() as c:
        rows = c.execute(text(lstm.sql)).mappings().all()
    assert {r["seed"]: r["accuracy"] for r in rows if r["grp"] == "lstm"} == pytest.approx(lstm.per_seed)


def test_temporal_order_with_a_failed_run_has_too_few_seeds(sqlite_url):
    plant(ORDER, sqlite_url, order_values(lambda c, s: 0.25 if c == "rnn" else 1.0,
                                          status=lambda c, s: "failed" if (c, s) == ("gru", 0) else "succeeded"))
    out = decide(ORDER, sqlite_url)
    assert out.verdict == studies.INCONCLUSIVE and out.seeds_complete == [1, 2]


def test_temporal_order_plants_the_lstm_with_its_forget_bias(sqlite_url):
    """The study's LSTM arm is its own grid point (sweep points): its stored spec carries the bias,
    the other cells' do not, and the analysis finds all three groups."""
    plant(ORDER, sqlite_url, order_values(lambda c, s: 0.25 if c == "rnn" else 1.0))
    data = load(ORDER, "cpu", sqlite_url)
    bias = {c: {spec["init"]["forget_bias"] for spec in data.runs[data.runs["cell"] == c]["spec"]}
            for c in ("rnn", "gru", "lstm")}
    assert bias == {"rnn": {None}, "gru": {None}, "lstm": {3.0}}
    assert sorted(set(data.runs["point"])) == sorted(ORDER.points("cpu"))
    assert decide(ORDER, sqlite_url).verdict == studies.REPRODUCED


# ---------------------------------------------------------------------------------------------
# "stays at the baseline"-style checks: a diverged run is no evidence either way that a cell stayed
# anywhere: the check has no value on its seed, and decide counts that seed like one with a failed run
# ---------------------------------------------------------------------------------------------

def _stays_cases():
    """Per study: what to plant for every run where the claim holds, which runs the 'stays' check reads
    (the target), the start of that check's text and the target's group (as the study names it)."""
    def add(spec):
        return {"val_loss": 0.17 if spec.cell == "rnn" else 0.001}

    def irnn(spec):
        return {"val_loss": 0.17 if (spec.activation, spec.init.recurrent) == ("tanh", "default") else 0.001}

    def copy(spec):
        return {"baseline": COPY_BASE, "val_loss": COPY_BASE * (1.02 if spec.cell == "lstm" else 0.97)}

    def order(spec):
        return {"val_metric": {"rnn": 0.26, "lstm": 0.992, "gru": 0.995}[spec.cell], "val_loss": 1.38}

    return {
        "adding": (ADD, add, lambda spec: spec.cell == "rnn", "the tanh RNN stays at the baseline", "rnn"),
        "irnn": (IRNN, irnn, lambda spec: (spec.activation, spec.init.recurrent) == ("tanh", "default"),
                 "a tanh RNN (PyTorch's default W_hh) stays at the baseline", "tanh + default"),
        "seq-len": (SEQ, seq_values(seq_good), lambda spec: (spec.cell, spec.task.seq_len) == ("rnn", T_HI),
                    "the tanh RNN fails at the longest T", f"rnn T={T_HI}"),
        "copy": (COPY, copy, lambda spec: spec.cell == "rnn", "tanh RNN and LSTM both plateau at the baseline", "rnn"),
        "temporal-order": (ORDER, order, lambda spec: spec.cell == "rnn", "the tanh RNN stays at chance", "rnn"),
    }


# how the target's runs end in each case: the seeds it touches, what is planted, what the check's text names
STAYS_BAD = {
    "inf": ((0, 1, 2), {"val_loss": math.inf}, "final val loss ∞"),
    "nan": ((1,), {"val_loss": math.nan}, "final val loss NaN"),
    # the engine skips the non-finite step's update, so a diverged run's last epoch can hold a finite loss
    # right at the baseline: only its status says it diverged
    "diverged": ((2,), {"status": "diverged", "nonfinite": [0, 1]}, "status diverged"),
}


def _plant_bad(url, study, good, target, prefix, seeds=(), override=None):
    """Plant ``good`` values for every run, ``override`` on the ``target`` runs of ``seeds``; decide, and
    return (the outcome, the check whose text starts with ``prefix``)."""
    def values(spec):
        v = dict(good(spec))
        if target(spec) and spec.seed in seeds:
            v.update(override or {})
        return v
    plant(study, url, values)
    out = decide(study, url)
    (check,) = [c for c in out.checks if c.text.startswith(prefix)]
    return out, check


def _plant_stays(url, study_key, bad=None):
    study, good, target, prefix, _ = _stays_cases()[study_key]
    seeds, override, _ = STAYS_BAD[bad] if bad else ((), {}, "")
    return _plant_bad(url, study, good, target, prefix, seeds, override)


@pytest.mark.parametrize("study_key", list(_stays_cases()))
def test_a_stays_check_holds_on_runs_that_stayed_and_did_not_diverge(sqlite_url, study_key):
    out, check = _plant_stays(sqlite_url, study_key)
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    assert check.per_seed == {0: True, 1: True, 2: True} and check.why == {}
    # the rule is in the check's text, and no seed is named as diverged
    assert check.text.endswith("a diverged run is no evidence either way"), check.text


@pytest.mark.parametrize("bad", list(STAYS_BAD))
@pytest.mark.parametrize("study_key", list(_stays_cases()))
def test_a_diverged_run_is_no_evidence_for_a_stays_check_and_the_verdict_says_why(sqlite_url, study_key, bad):
    seeds, _, why = STAYS_BAD[bad]
    group = _stays_cases()[study_key][4]
    out, check = _plant_stays(sqlite_url, study_key, bad)
    # a run that diverged stopped: whether it would have stayed at the baseline (or at chance) is unknown,
    # so the check has no value on its seed (None), and holds on the others
    assert check.per_seed == {s: None if s in seeds else True for s in (0, 1, 2)}, check.text
    others = [c for c in out.checks if c is not check]
    assert all(all(c.per_seed.values()) for c in others), [(c.text, c.per_seed) for c in others]
    assert [check.mark(s) for s in (0, 1, 2)] == ["no evidence" if s in seeds else "holds" for s in (0, 1, 2)]
    # the rule: a seed where no check fails and one has no value gives no evidence; every other seed
    # passes; fewer than MIN_SEEDS seeds with evidence (3 seeds, at least one diverged) is inconclusive
    evidence = 3 - len(seeds)
    assert evidence < studies.MIN_SEEDS
    assert out.verdict == studies.INCONCLUSIVE, out.reason
    assert out.seeds_complete == [0, 1, 2]
    assert out.reason.startswith(f"only {evidence} of the 3 complete seeds give evidence, at least "
                                 f"{studies.MIN_SEEDS} are needed"), out.reason
    for s in seeds:
        assert f"seed {s}: the {group} run diverged ({why}): no evidence either way" in out.reason, out.reason
        assert f"seed {s} (the {group} run diverged ({why}))" in check.text, check.text
    for s in set((0, 1, 2)) - set(seeds):
        assert f"seed {s}:" not in out.reason and f"seed {s} (" not in check.text, (out.reason, check.text)
    # the report and the JSON say it too, not "fails"
    d = out.to_dict()
    (c,) = [c for c in d["checks"] if c["text"] == check.text]
    assert c["per_seed"] == {str(s): None if s in seeds else True for s in (0, 1, 2)}
    assert set(c["no_evidence"]) == {str(s) for s in seeds}


def test_every_seed_diverged_is_inconclusive_and_the_reason_names_each(sqlite_url):
    """The tanh RNN diverged (final val loss +∞) on every seed while the gated cells solved the adding
    problem: no seed says whether the tanh RNN stays at the baseline, so the claim is neither reproduced nor
    refuted."""
    out, check = _plant_stays(sqlite_url, "adding", "inf")
    assert out.verdict == studies.INCONCLUSIVE
    assert check.per_seed == {0: None, 1: None, 2: None}
    assert out.reason == ("only 0 of the 3 complete seeds give evidence, at least 3 are needed; "
                          + "; ".join(f"seed {s}: the rnn run diverged (final val loss ∞): no evidence either way"
                                      for s in (0, 1, 2)))


def test_a_seed_where_another_check_fails_counts_against_even_with_a_diverged_run(sqlite_url):
    """No evidence on one check does not hide a failing one: the LSTM and the GRU learned nothing on every
    seed and the tanh RNN diverged on seed 1: every seed fails the first check, so the claim is refuted."""
    plant(ADD, sqlite_url, lambda spec: {"val_loss": math.inf if (spec.cell, spec.seed) == ("rnn", 1) else 0.17})
    out = decide(ADD, sqlite_url)
    solve, stays = out.checks
    assert solve.per_seed == {0: False, 1: False, 2: False}
    assert stays.per_seed == {0: True, 1: None, 2: True}
    assert out.verdict == studies.NOT_REPRODUCED, out.reason


# ---------------------------------------------------------------------------------------------
# "solves it" checks: a diverged run did not solve the task, even when its last recorded loss is tiny
# (the engine skips the non-finite step's update, so only the run's status says it broke off)
# ---------------------------------------------------------------------------------------------

def _solves_cases():
    """Per study: the good values (every check holds), which runs one 'solves' check reads, the start of
    that check's text and the diverged group as the check names it."""
    cases = _stays_cases()
    return {
        "adding": (ADD, cases["adding"][1], lambda spec: spec.cell == "lstm", "LSTM and GRU solve it", "lstm"),
        "irnn": (IRNN, cases["irnn"][1],
                 lambda spec: (spec.activation, spec.init.recurrent) == ("relu", "identity"),
                 "IRNN (ReLU, W_hh = I) solves it", "relu + identity"),
        "seq-len": (SEQ, cases["seq-len"][1], lambda spec: (spec.cell, spec.task.seq_len) == ("lstm", T_MID),
                    "after training the LSTM solves it at every T", f"lstm T={T_MID}"),
        "temporal-order": (ORDER, cases["temporal-order"][1], lambda spec: spec.cell == "gru",
                           "the GRU solves it", "gru"),
    }


SOLVES_BAD = {
    # the run diverged after it reached a tiny loss: only its status says so; the loss alone passes
    "diverged-tiny-loss": ((0, 2), {"status": "diverged", "nonfinite": [0, 1]}, "status diverged"),
    "inf": ((1,), {"val_loss": math.inf}, "final val loss ∞"),
}


@pytest.mark.parametrize("bad", list(SOLVES_BAD))
@pytest.mark.parametrize("study_key", list(_solves_cases()))
def test_a_diverged_run_did_not_solve_the_task_whatever_its_last_loss(sqlite_url, study_key, bad):
    study, good, target, prefix, group = _solves_cases()[study_key]
    seeds, override, why = SOLVES_BAD[bad]
    out, check = _plant_bad(sqlite_url, study, good, target, prefix, seeds, override)
    assert check.per_seed == {s: s not in seeds for s in (0, 1, 2)}, check.text
    assert [check.mark(s) for s in (0, 1, 2)] == ["fails" if s in seeds else "holds" for s in (0, 1, 2)]
    # the check's text says the rule and names each diverged run
    assert "a diverged run did not solve it" in check.text
    for s in seeds:
        assert f"seed {s} (the {group} run diverged ({why}))" in check.text, check.text
    # never reproduced on the strength of a run that broke off: some seeds pass, some fail
    assert out.verdict == studies.INCONCLUSIVE, out.reason
    assert out.reason.startswith("the claim holds on seeds "), out.reason
    # (with the target's runs finished the same values reproduce the claim:
    # test_a_stays_check_holds_on_runs_that_stayed_and_did_not_diverge plants them)
