"""What the Strategies page and ``rnnlab compare`` conclude (rnnlab.strategies), on runs written through
the real store into a real SQLite database and read back by db.queries as both read them, with answers
known by construction: only finished runs with a result count as seeds; groups that differ in more than
the compared factor (another task, another T) are not ranked against each other; ranked groups follow
loss ÷ baseline after the tie on learning; an all-diverged comparison says so; the horizon is measured
against the probe sequence's length (RunInfo.seq_len), not the spec's T."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from db import queries, store
from rnnlab import strategies
from rnnlab.records import RunInfo
from rnnlab.spec import parse_spec
from tests.dashboard.seed import records
from tests.synthetic import param_names

B = 1 / 6   # the adding task's analytic baseline (MSE of predicting 1)


def put(url: str, cell: str, seed: int, loss: float | None = None, *, task: dict | None = None, T: int = 50,
        probe_len: int | None = None, baseline: float = B, status: str = "succeeded", horizon: float | None = None,
        log_ratio: float | None = None, tags=("c",), info: bool = True, epochs: bool = True, **extra) -> int:
    """A run through the store: ``status`` 'queued' stops after create_runs, 'failed' after epoch 0,
    'diverged' at epoch 2 (a non-finite step), else all epochs (tests.dashboard.seed.records). Its
    RunInfo has the analytic baseline ``baseline`` and seq_len ``probe_len`` (default: the spec's T), its
    last epoch the val loss ``loss`` and, in layer 0, ``horizon`` and ``log_ratio`` when given, with
    profiles ``probe_len`` long. ``info=False``: no RunInfo stored (an old run: no baseline, no probe
    length); ``epochs=False``: no epoch stored (a finished run without a final loss)."""
    s = parse_spec({"cell": cell, "task": task or {"name": "adding", "seq_len": T}, "seed": seed, "epochs": 3,
                    "hidden_size": 32, "steps_per_epoch": 20, **extra})
    (run_id,) = store.create_runs([s], tags=tags, url=url)
    if status == "queued":
        return run_id
    store.claim_run(run_id, "test-worker", url=url)
    L = probe_len or s.task.seq_len
    run_info = RunInfo(task=s.task.name, variant=getattr(s.task, "variant", ""), seq_len=L, metric_name="m",
                       higher_is_better=False, baseline_loss=baseline, baseline_metric=baseline,
                       loss_name="mse", num_params=1, device="cpu", gamma=1.0 if cell == "rnn" else None,
                       param_names=param_names(cell, s.num_layers))
    if info:
        store.record_info(run_id, run_info, attempt=1, url=url)
    recs = records(s, diverge_at=2 if status == "diverged" else None)
    recs = recs[:1] if status == "failed" else recs
    for rec in recs:
        for layer in rec.layers:
            layer.grad_h = [0.05 * 0.99 ** (L - t) for t in range(1, L + 1)]
            layer.grad_c = None
            layer.rho = 0.9                  # no ρ growth
    last = recs[-1].layers[0]
    if horizon is not None:
        last.horizon = horizon
    if log_ratio is not None:
        last.log_ratio = log_ratio
    if loss is not None and status != "diverged":
        recs[-1].val_loss = loss
    for rec in recs if epochs else []:
        store.record_epoch(run_id, rec, attempt=1, url=url)
    store.finish_run(run_id, status, status, attempt=1, url=url)
    return run_id


def verdicts(url: str, ids: list[int], factor: str = "cell") -> tuple[pd.DataFrame, str]:
    """The summary (indexed by group) and the conclusion, read as `rnnlab compare` reads them."""
    eng = queries.engine_for(url)
    runs = queries.runs_by_ids(ids, engine=eng)
    table = strategies.summary(runs, queries.final_summary(ids, engine=eng), strategies.groups_of(runs, factor),
                               queries.run_health(ids, engine=eng))
    return table.set_index("group", drop=False), strategies.overall(table, factor)


def test_seeds_count_only_finished_runs_with_a_result(sqlite_url):
    """One finished run per group (loss 0.0030 vs 0.0032, no standard error stored); the other two seeds
    of the LSTMs are queued, of the GRUs failed at epoch 0. One seed each: a hint, not 'clear with these
    seeds' (the old count took all three seeds), and the verdicts name what was left out."""
    ids = [put(sqlite_url, "lstm", 0, 0.0030), put(sqlite_url, "gru", 0, 0.0032)]
    for s in (1, 2):
        ids += [put(sqlite_url, "lstm", s, status="queued"), put(sqlite_url, "gru", s, status="failed")]
    table, text = verdicts(sqlite_url, ids)
    assert table.loc["lstm", "seeds"] == 1 and table.loc["gru", "seeds"] == 1
    assert (table.loc["lstm", "runs"], table.loc["lstm", "finished"]) == (3, 1)
    assert "clear" not in text and "With a single seed per group this is a hint, not a result" in text
    assert table.loc["lstm", "verdict"].endswith("one seed: anecdotal (2 of its 3 runs left out: 2 queued)")
    assert table.loc["gru", "verdict"].endswith("one seed: anecdotal (2 of its 3 runs left out: 2 failed)")
    assert "Left out (only finished runs with a result count, seeds included): lstm 2 (2 queued) · gru 2 (2 failed)." \
        in text
    pub = {g["group"]: g for g in strategies.public(table.reset_index(drop=True))}
    assert pub["lstm"]["seeds"] == 1 and pub["lstm"]["left_out"] == {"queued": 2}
    assert json.loads(json.dumps(pub, allow_nan=False))["gru"]["left_out"] == {"failed": 2}   # as compare --json


def test_groups_on_different_tasks_are_not_ranked_against_each_other(sqlite_url):
    """GRUs on adding at 2.0–2.2% of their baseline (1/6); LSTMs on copy at 5.0–5.2% of theirs (0.05), a
    smaller raw loss. By cell, the two groups differ in the task too: no best cell, nothing ranked, nothing
    'clear'; the fields that set them apart are named; the order is by loss ÷ baseline (GRU first), not
    by the raw loss (which put the LSTMs first and called them best)."""
    ids = [put(sqlite_url, "gru", s, B * (0.020 + 0.001 * s)) for s in range(3)]
    ids += [put(sqlite_url, "lstm", s, 0.05 * (0.050 + 0.001 * s), task={"name": "copy", "seq_len": 50},
                baseline=0.05) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    assert table["rank"].isna().all()
    assert list(table["group"]) == ["gru", "lstm"]
    assert text.startswith('No best cell: the groups differ in more than the cell (task.name: "adding" (gru); '
                           '"copy" (lstm))'), text
    assert "Best" not in text and "clear" not in text and "By loss ÷ baseline (each run's own baseline): gru 2.1%, " \
        "lstm 5.1%." in text
    assert table.loc["lstm", "_between"] == {"task.name": ['"copy"']}
    assert 'differs from the other groups in more than the factor (task.name: "copy")' in table.loc["lstm", "verdict"]
    assert table.loc["gru", "confounded"] == 'between groups: task.name: "adding"'


def test_groups_at_different_T_are_confounded_unless_T_is_the_factor(sqlite_url):
    """GRUs at T = 10 and LSTMs at T = 400 (adding): by cell they differ in T as well, so no best cell.
    LSTMs at T = 10 and at T = 400 compared by T differ in nothing else: ranked, the lower loss ÷
    baseline first."""
    mixed = [put(sqlite_url, "gru", s, B * (0.09 + 0.002 * s), T=10) for s in range(3)]
    mixed += [put(sqlite_url, "lstm", s, B * (0.04 + 0.002 * s), T=400) for s in range(3)]
    table, text = verdicts(sqlite_url, mixed)
    assert table["rank"].isna().all() and text.startswith("No best cell")
    assert "(task.seq_len: 400 (lstm); 10 (gru))" in text     # in the table's order: by loss ÷ baseline
    by_T = [put(sqlite_url, "lstm", s, B * (0.09 + 0.002 * s), T=10) for s in range(3)] + mixed[3:]
    table, text = verdicts(sqlite_url, by_T, "T")
    assert list(table["rank"]) == [1, 2] and list(table["group"]) == ["400", "10"]
    assert text.startswith("Best T here: **400**") and table["_between"].map(len).sum() == 0


def test_a_field_that_varies_alike_in_every_group_only_confounds_within(sqlite_url):
    """Both cells ran lr 0.001 and 0.01 (seeds 0, 1 and 2, 3): the groups share their values, so they
    are still ranked; each group names the varying lr as a within-group confound."""
    ids = [put(sqlite_url, c, s, B * r * (1 + 0.01 * s), optimizer={"name": "adam", "lr": 0.001 if s < 2 else 0.01})
           for c, r in (("lstm", 0.02), ("gru", 0.2)) for s in range(4)]
    table, text = verdicts(sqlite_url, ids)
    assert list(table["rank"]) == [1, 2] and text.startswith("Best cell here: **lstm**")
    assert table.loc["lstm", "_confounds"] == {"optimizer.lr": ["0.001", "0.01"]}
    assert table.loc["lstm", "_between"] == {} and "between" not in table.loc["lstm", "confounded"]


def test_the_runner_up_is_the_next_by_loss_over_baseline(sqlite_url):
    """LSTM at 2% of the baseline (best); GRU at 60% with the whole-sequence horizon; RNN at 10% with a
    short one. Outside the best's noise, groups follow by loss ÷ baseline: RNN is #2 and the runner-up,
    GRU #3 (the old order put gradient evidence first: GRU #2 with six times RNN's loss)."""
    ids = []
    for s in range(3):
        ids.append(put(sqlite_url, "lstm", s, B * (0.020 + 0.0005 * s), horizon=49.0, log_ratio=-0.1))
        ids.append(put(sqlite_url, "gru", s, B * (0.600 + 0.005 * s), horizon=49.0, log_ratio=-0.1))
        ids.append(put(sqlite_url, "rnn", s, B * (0.100 + 0.001 * s), horizon=12.0, log_ratio=-2.3))
    table, text = verdicts(sqlite_url, ids)
    assert list(table["group"]) == ["lstm", "rnn", "gru"] and list(table["rank"]) == [1, 2, 3]
    assert "Runner-up rnn (loss at 10.1% of the baseline" in text


def test_a_broken_group_is_never_first_and_unranked_groups_follow_by_loss_over_baseline(sqlite_url):
    """A GRU that diverged in one seed has the lowest finite loss but is flagged; the LSTM (60%) ranks
    first; of the unranked, the healthy RNN that does not beat the baseline comes before the broken
    GRU."""
    ids = [put(sqlite_url, "gru", 0, status="diverged")] + [put(sqlite_url, "gru", s, B * 0.001) for s in (1, 2)]
    ids += [put(sqlite_url, "lstm", s, B * (0.6 + 0.01 * s)) for s in range(3)]
    ids += [put(sqlite_url, "rnn", s, B * (0.99 + 0.02 * s)) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    assert list(table["group"]) == ["lstm", "rnn", "gru"]
    assert table.loc["lstm", "rank"] == 1 and table[["rank"]].iloc[1:].isna().all().all()
    assert text.startswith("Best cell here: **lstm**") and "**gru**: non-finite in 1/3 runs" in text


def test_when_every_run_diverged_the_conclusion_says_so(sqlite_url):
    ids = [put(sqlite_url, c, s, status="diverged") for c in ("rnn", "lstm") for s in range(2)]
    table, text = verdicts(sqlite_url, ids)
    assert table["rank"].isna().all()
    assert text.startswith("No group solved the task: every finished run diverged (4 of 4: a non-finite loss or "
                           "gradient ended each)."), text
    assert "none beat the trivial baseline" not in text


@pytest.mark.parametrize("n_copy", [8])
def test_the_horizon_is_measured_against_the_probe_length(sqlite_url, n_copy):
    """Copy at T = 4 with n_copy = 8: the probe sequence, over which the horizon is counted, is
    T + 2·n_copy = 20 steps (RunInfo.seq_len). LSTMs reach 9 steps back, GRUs 13: neither reaches the
    whole sequence (the old text said 'the whole sequence (3 steps)' for both, counting against T = 4,
    and tied them). Losses within noise, GRU's a little higher: GRU ranks first on the horizon, 13/19 vs
    9/19 of the way back."""
    task = {"name": "copy", "seq_len": 4, "n_copy": n_copy, "n_symbols": 4}
    L = 4 + 2 * n_copy
    ids = [put(sqlite_url, "lstm", s, 0.5 * r, task=task, probe_len=L, baseline=0.5, horizon=9.0, log_ratio=-1.0)
           for s, r in enumerate([0.010, 0.013])]
    ids += [put(sqlite_url, "gru", s, 0.5 * r, task=task, probe_len=L, baseline=0.5, horizon=13.0, log_ratio=-1.0)
            for s, r in enumerate([0.0105, 0.0135])]
    table, text = verdicts(sqlite_url, ids)
    assert list(table["T"]) == [L, L] and list(table["group"]) == ["gru", "lstm"]
    assert table.loc["gru", "_hfrac"] == pytest.approx(13 / 19) and table.loc["lstm", "_hfrac"] == pytest.approx(9 / 19)
    assert "gradients reach ≈9 of 20 steps back" in table.loc["lstm", "verdict"]
    assert text.startswith("Best cell here: **gru**") and "horizon ≈13 of 20 steps)." in text
    assert "gru ranks first on gradient evidence (horizon ≈13 of 20 steps vs ≈9 of 20 steps)" in text
    assert "whole sequence" not in text
    pub = {g["group"]: g for g in strategies.public(table.reset_index(drop=True))}
    assert pub["gru"]["T"] == L


def test_each_run_reaches_its_own_whole_probe_sequence(sqlite_url):
    """Adding p13 draws one length per probe batch: seeds with probe sequences of 55 and 52 steps whose
    horizons are 54 and 51 both reach their whole sequence, so the group does, although the mean
    horizon (52.5) is below the longest length − 1."""
    ids = [put(sqlite_url, "lstm", s, B * 0.01 * (1 + s / 10), probe_len=n, horizon=n - 1.0, log_ratio=-0.2,
               task={"name": "adding", "seq_len": 50, "variant": "p13"}) for s, n in enumerate([55, 52])]
    table, text = verdicts(sqlite_url, ids)
    assert table.loc["lstm", "T"] == 55 and table.loc["lstm", "_hfrac"] == 1.0
    assert "horizon the whole sequence (54 steps)" in text and "gradients reach all the way back" in \
        table.loc["lstm", "verdict"]
    assert math.isclose(table.loc["lstm", "horizon (steps)"], 52.5)


def test_a_finished_run_without_a_final_loss_is_left_out_of_the_numbers(sqlite_url):
    """Three GRUs at 50–51% of the baseline and a fourth that finished without storing a final loss: it
    is left out, so the GRUs' loss ÷ baseline is their three seeds' (it was NaN: 'no finite final loss',
    unranked, while the verdict said the run was left out)."""
    ids = [put(sqlite_url, "lstm", s, B * 0.01 * (1 + 0.01 * s)) for s in range(3)]
    ids += [put(sqlite_url, "gru", s, B * 0.5 * (1 + 0.01 * s)) for s in range(3)]
    ids += [put(sqlite_url, "gru", 3, epochs=False)]
    table, text = verdicts(sqlite_url, ids)
    gru = table.loc["gru"]
    assert gru["loss ÷ baseline"] == pytest.approx(0.505) and gru["beats baseline"] and gru["rank"] == 2
    assert gru["solve rate"] == 0 and gru["seeds"] == 3
    assert gru["verdict"].startswith("beats the baseline, partly learns (loss at 50.5% of the baseline")
    assert "Runner-up gru (loss at 50.5% of the baseline" in text and "nan" not in text
    assert "gru 1 (1 finished without a final loss)" in text


@pytest.mark.parametrize("how", ["zero", "no info"])
def test_a_group_without_a_baseline_says_its_baseline_is_unknown(sqlite_url, how):
    """LSTMs at 50.5% of the adding baseline; GRUs with a finite loss (0.001) but a stored baseline of 0, or
    no runs.info at all (an old run). The GRUs' loss ÷ baseline is unknown: their verdict says so (it read
    'no finite final loss'), the conclusion prints no 'nan%' and does not claim that no GRU solved it."""
    ids = [put(sqlite_url, "lstm", s, B * 0.5 * (1 + 0.01 * s)) for s in range(3)]
    kw = {"baseline": 0.0} if how == "zero" else {"info": False}
    ids += [put(sqlite_url, "gru", s, 0.001, **kw) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    gru = table.loc["gru"]
    assert gru["verdict"].startswith("baseline unknown for 3 of its 3 counted runs (no stored trivial baseline, or "
                                     "one of 0): final loss 0.001, not compared with the baseline"), gru["verdict"]
    assert "no finite final loss" not in gru["verdict"] and math.isnan(gru["solve rate"])
    assert "nan" not in text.lower() and "none of gru" not in text
    assert "Runner-up gru (final loss 0.001, its baseline unknown). gru's baseline is unknown" in text, text
    only = verdicts(sqlite_url, ids[3:])[1]
    assert only.startswith("No group can be ranked: no trivial baseline is known"), only


@pytest.mark.parametrize("task, L", [({"name": "copy", "seq_len": 4, "n_copy": 8, "n_symbols": 4}, 20),
                                     ({"name": "adding", "seq_len": 50, "variant": "p13"}, 54)],
                         ids=["copy", "adding p13"])
def test_without_runs_info_the_probe_length_comes_from_the_spec(sqlite_url, task, L):
    """Old runs without runs.info (no RunInfo.seq_len): the horizon is still counted over the sequence
    the spec unrolls (JobSpec.steps: T + 2·n_copy = 20 on copy; T + ⌊0.1·T⌋ − 1 = 54 on adding p13),
    not over the spec's T (a horizon of 9 read 'all the way back' on copy at T = 4)."""
    ids = [put(sqlite_url, "lstm", s, 0.001, task=task, probe_len=L, horizon=9.0, log_ratio=-1.0, info=False)
           for s in range(2)]
    table, _ = verdicts(sqlite_url, ids)
    assert table.loc["lstm", "T"] == L
    assert f"gradients reach ≈9 of {L} steps back" in table.loc["lstm", "verdict"]


def test_groups_that_differ_in_more_than_the_factor_are_listed_by_loss_over_baseline_alone(sqlite_url):
    """LSTMs on adding at 90.1% of the baseline (beating it, three seeds that agree); one GRU on copy at 80%
    (one run, no standard error: not beating it). Not comparable, so listed by loss ÷ baseline alone, as
    the conclusion says: GRU first (it read 'lstm 90.1%, gru 80%')."""
    ids = [put(sqlite_url, "lstm", s, B * 0.9 * (1 + 0.001 * s)) for s in range(3)]
    ids += [put(sqlite_url, "gru", 0, 0.8, task={"name": "copy", "seq_len": 20}, baseline=1.0)]
    table, text = verdicts(sqlite_url, ids)
    assert list(table["group"]) == ["gru", "lstm"] and table["rank"].isna().all()
    assert text.startswith("No best cell") and "By loss ÷ baseline (each run's own baseline): gru 80%, lstm 90.1%." \
        in text, text


def test_only_the_runs_that_count_are_compared_for_confounds(sqlite_url):
    """Three LSTM seeds at lr 0.001 and a fourth queued at lr 0.01: the queued run is left out of the
    numbers, so it does not make the counted LSTMs 'confounded' in lr either."""
    ids = [put(sqlite_url, "lstm", s, B * 0.01 * (1 + 0.01 * s)) for s in range(3)]
    ids += [put(sqlite_url, "lstm", 3, status="queued", optimizer={"name": "adam", "lr": 0.01})]
    ids += [put(sqlite_url, "gru", s, B * 0.5 * (1 + 0.01 * s)) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    assert table.loc["lstm", "_confounds"] == {} and table.loc["lstm", "confounded"] == ""
    assert "confounded" not in table.loc["lstm", "verdict"] and "Confounded" not in text
    assert text.startswith("Best cell here: **lstm**")


def test_everything_but_the_seed_across_tasks_names_the_task():
    """Groups of 'everything but the seed' on copy and on adding differ in the task: that is named
    (task.name), not the fields only one task has (task.n_copy, task.variant)."""
    a = [parse_spec({"cell": "lstm", "task": {"name": "copy", "seq_len": 50}, "seed": s}).to_dict() for s in range(2)]
    b = [parse_spec({"cell": "lstm", "task": {"name": "adding", "seq_len": 50}, "seed": s}).to_dict() for s in range(2)]
    between = strategies.confounds_between({"copy": a, "adding": b}, "everything but the seed")
    assert between == {"task.name": {"copy": ['"copy"'], "adding": ['"adding"']}}


def test_an_unknown_baseline_is_not_read_as_not_beating_it(sqlite_url):
    """LSTMs at 1.3× their known baseline; GRUs with a tiny loss and no stored baseline (old runs). The
    conclusion said 'none beat the trivial baseline', a claim about the GRUs that nothing supports."""
    ids = [put(sqlite_url, "lstm", s, B * 1.3 * (1 + .01 * s)) for s in range(3)]
    ids += [put(sqlite_url, "gru", s, B * 0.01 * (1 + .01 * s), info=False) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    assert table["rank"].isna().all()
    assert text.startswith("No group can be ranked: none with a known baseline beats it"), text
    assert "gru has no trivial baseline to compare with" in text and "nothing is concluded about it" in text
    assert "none beat the trivial baseline" not in text


def test_a_group_without_a_result_is_not_the_runner_up(sqlite_url):
    """Every finished LSTM has no final loss (left out); three GRUs at 20% of the baseline. The LSTMs were
    named runner-up ('loss at unknown …, final loss nan') and the text asked for seeds though the GRUs have 3."""
    ids = [put(sqlite_url, "lstm", s, epochs=False) for s in range(2)]
    ids += [put(sqlite_url, "gru", s, B * 0.2 * (1 + .01 * s)) for s in range(3)]
    table, text = verdicts(sqlite_url, ids)
    assert table.loc["gru", "rank"] == 1 and table.loc["gru", "seeds"] == 3 and table.loc["lstm", "seeds"] == 0
    assert text.startswith("Best cell here: **gru**"), text
    assert "No other cell value has a finished run with a result to compare with." in text
    assert "Runner-up" not in text and "nan" not in text and "single seed" not in text
    assert "lstm 2 (2 finished without a final loss)" in text
