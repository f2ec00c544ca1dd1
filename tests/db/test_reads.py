"""db.reads, the one read API of the runs, on both backends, where the two old read APIs behaved
differently: the tag filters, the shape of one run, duplicate lookup; the one worker liveness rule;
the one run label; the one settings class."""

import datetime as dt
import math

import pandas as pd
import pytest

from db import liveness, queries, reads, store
from rnnlab.records import run_label
from rnnlab.spec import parse_spec

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 2, "steps_per_epoch": 2}


def spec(**kw):
    return parse_spec({**TINY, **kw})


def test_tags_filter_any_and_all(db_url):
    """Both old behaviours are kept, by name: the dashboard's ``tags`` is any of them (a multiselect
    widens), the CLI's repeated --tag is ``all_tags`` (each one narrows)."""
    a, = store.create_runs([spec(seed=1)], tags=["x"], url=db_url)
    b, = store.create_runs([spec(seed=2)], tags=["y"], url=db_url)
    c, = store.create_runs([spec(seed=3)], tags=["x", "y"], url=db_url)
    ids = lambda f: reads.list_runs(f, sort="oldest", url=db_url)[0]["id"].tolist()  # noqa: E731
    assert ids({"tags": ["x", "y"]}) == [a, b, c]
    assert ids({"all_tags": ["x", "y"]}) == [c]
    assert ids({"all_tags": ["x", "x"]}) == [a, c]
    assert ids({"all_tags": ["x"], "tags": ["y"]}) == [c]
    df, total = reads.list_runs({"tags": ["x"]}, page=0, page_size=1, url=db_url)
    assert total == 2 and df["id"].tolist() == [c] and df["tags"].tolist() == ["x, y"]


def test_one_run_has_its_count_of_attempts_and_their_history(db_url):
    """The old dashboard read put the attempts table under ``attempts`` (hiding the count) and gave
    SQLite's naive datetimes; the kept shape is the store's: the count, ``attempt_history`` and aware
    datetimes, on every backend."""
    run_id, = store.create_runs([spec()], tags=["b", "a"], url=db_url)
    store.claim_run(run_id, "w1", url=db_url)
    store.finish_run(run_id, "failed", "boom", attempt=1, url=db_url)
    r = reads.get_run(run_id, url=db_url)
    assert r["attempts"] == 1 and r["tags"] == ["a", "b"] and r["status"] == "failed"
    assert [(h["attempt"], h["worker"], h["outcome"]) for h in r["attempt_history"]] == [(1, "w1", "failed")]
    for t in (r["created_at"], r["finished_at"], r["attempt_history"][0]["started_at"]):
        assert t.utcoffset() == dt.timedelta(0)
    assert reads.get_run(run_id, engine=queries.engine_for(db_url)) == r     # url or engine: the same read
    assert reads.get_run(run_id + 1000, url=db_url) is None


def test_find_existing_keeps_every_run_of_a_hash_in_id_order(db_url):
    first, second = store.create_runs([spec(), spec()], url=db_url)
    h = spec().spec_hash()
    assert reads.find_existing([h, h, "0" * 64], url=db_url) == {h: [first, second]}
    assert reads.find_existing([], url=db_url) == {}


def test_workers_state_by_the_one_rule(db_url):
    """heartbeat ages come from the database's clock; a stopped worker is 'stopped' whatever its age."""
    store.heartbeat("w1", host="h", pid=1, queues="cpu", device="cpu", start=True, url=db_url)
    store.heartbeat("w2", host="h", pid=2, queues="cpu", device="cpu", start=True, url=db_url)
    liveness.worker_stopped("w2", url=db_url)
    states = {w["name"]: (w["state"], w["alive"]) for w in liveness.list_workers(lost_after_s=3600, url=db_url)}
    assert states == {"w1": ("alive", True), "w2": ("stopped", False)}
    (w1,) = [w for w in liveness.list_workers(lost_after_s=0, url=db_url) if w["name"] == "w1"]
    assert (w1["state"], w1["alive"]) == ("lost", False) and w1["heartbeat_age_s"] >= 0


@pytest.mark.parametrize(("age", "stopped", "state"), [(0.0, False, "alive"), (60.0, False, "alive"),
                                                       (60.001, False, "lost"), (None, False, "lost"),
                                                       (0.0, True, "stopped")])
def test_worker_state_boundaries(age, stopped, state):
    assert liveness.worker_state(age, stopped, 60.0) == state


def test_run_label_of_a_row_a_series_and_a_spec():
    row = {"id": 12, "cell": "rnn", "activation": "relu", "task": "adding", "seq_len": 100, "hidden_size": 128,
           "num_layers": 2, "seed": 3, "name": None}
    assert run_label(row) == "#12 rnn/relu adding T=100 h128x2 s3"
    assert run_label({**row, "cell": "lstm", "activation": "—", "name": "big"}) == \
        "#12 lstm adding T=100 h128x2 s3 · big"
    # a DataFrame row: numbers may arrive as floats, a missing name as NaN
    series = pd.Series({**row, "seq_len": 100.0, "name": float("nan")})
    assert math.isnan(series["name"]) and run_label(series) == "#12 rnn/relu adding T=100 h128x2 s3"
    s = parse_spec({**TINY, "cell": "gru", "num_layers": 2, "seed": 4, "name": "g"})
    assert s.label() == "gru adding T=10 h8x2 s4 · g"
    assert run_label({**s.to_dict(), "id": 5, "task": "adding", "seq_len": 10, "activation": None}) == \
        "#5 " + s.label()


def test_one_settings_class_reads_the_login_variables(monkeypatch, tmp_path):
    from rnnlab import users
    from rnnlab.settings import Settings

    for k in ("RNNLAB_AUTH", "RNNLAB_USERS_FILE", "RNNLAB_OIDC_DEFAULT_ROLE", "RNNLAB_OIDC_PROVIDER",
              "RNNLAB_TRUSTED_PROXIES"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path))
    d = Settings()
    assert (d.auth, d.users_file, d.oidc_default_role, d.oidc_provider, d.trusted_proxy_set) == \
        ("auto", None, "viewer", None, set())
    assert d.users_path == tmp_path / "users.yaml" == users.default_path()
    monkeypatch.setenv("RNNLAB_AUTH", "users")
    monkeypatch.setenv("RNNLAB_USERS_FILE", str(tmp_path / "u.yaml"))
    monkeypatch.setenv("RNNLAB_OIDC_DEFAULT_ROLE", "member")
    monkeypatch.setenv("RNNLAB_OIDC_PROVIDER", "google")
    monkeypatch.setenv("RNNLAB_TRUSTED_PROXIES", " 127.0.0.1, ,10.0.0.2")
    s = Settings()
    assert (s.auth, s.oidc_default_role, s.oidc_provider) == ("users", "member", "google")
    assert s.users_path == tmp_path / "u.yaml" == users.default_path()
    assert s.trusted_proxy_set == {"127.0.0.1", "10.0.0.2"}
    monkeypatch.setenv("RNNLAB_OIDC_DEFAULT_ROLE", "owner")
    with pytest.raises(ValueError, match="oidc_default_role"):
        Settings()


def test_ids_beyond_a_32_bit_key_are_refused_not_sent(db_url):
    """runs.id is int4 on PostgreSQL: an id above 2**31 - 1 (or below 1) is no run, on both backends,
    instead of a DataError from the database."""
    a, = store.create_runs([spec(seed=1)], url=db_url)
    assert reads.MAX_RUN_ID == 2 ** 31 - 1
    for big in (2 ** 31, 2 ** 53 - 1, 10 ** 30, 0, -5):
        assert reads.get_run(big, url=db_url) is None
        assert reads.runs_by_ids([big, a], url=db_url)["id"].tolist() == [a]
        assert reads.list_runs({"ids": [big]}, url=db_url)[1] == 0
    assert reads.list_runs({"ids": [2 ** 31, a]}, url=db_url)[0]["id"].tolist() == [a]
    assert reads.get_run(a, url=db_url)["id"] == a


def test_a_spec_field_compared_with_a_number_or_a_boolean_matches_only_numbers_or_booleans(db_url):
    """task.variant is text ('a16'): equal to 1 or to true is no run on both backends (PostgreSQL cast
    the text and failed with InvalidTextRepresentation); equal to 'a16', and seq_len to 10, still match."""
    a, = store.create_runs([spec(seed=1, task={"name": "adding", "seq_len": 10, "variant": "a16"})], url=db_url)
    b, = store.create_runs([spec(seed=2, task={"name": "adding", "seq_len": 12, "variant": "p13"})], url=db_url)
    n = lambda path, v: reads.list_runs({"spec": {path: v}}, url=db_url)[1]  # noqa: E731
    assert n("task.variant", "1") == 0
    assert n("task.variant", "true") == 0
    assert n("task.variant", "a16") == 1
    assert n("task.seq_len", "10") == 1 and n("task.seq_len", "12.0") == 1
    assert n("seed", "2") == 1
    assert {r["id"] for r in [reads.get_run(a, url=db_url), reads.get_run(b, url=db_url)]} == {a, b}


def test_search_matches_percent_underscore_and_backslash_literally(db_url):
    """'%' and '_' in the search box are the characters themselves, not LIKE wildcards."""
    a, = store.create_runs([spec(seed=1, name="lr_1 at 50%")], url=db_url)
    b, = store.create_runs([spec(seed=2, name="lrX1 at 50 runs")], url=db_url)
    c, = store.create_runs([spec(seed=3, name="path a\\b")], url=db_url)
    ids = lambda q: reads.list_runs({"search": q}, sort="oldest", url=db_url)[0]["id"].tolist()  # noqa: E731
    assert ids("lr_1") == [a]
    assert ids("50%") == [a]
    assert ids("%") == [a]
    assert ids("_") == [a]
    assert ids("a\\b") == [c]
    assert ids("LR") == [a, b]      # still case-insensitive


def test_sorting_by_val_loss_puts_the_best_run_first_and_runs_without_a_loss_last(db_url):
    """NaN is stored as NULL; SQLite sorts NULL first in ascending order, so without NULLS LAST the
    Runs page's "val_loss" order began with a diverged (NaN) run and a queued one, not the best run."""
    from tests.synthetic import epoch_record

    ids = store.create_runs([spec(seed=s) for s in range(4)], url=db_url)
    losses = {ids[0]: 0.5, ids[1]: math.nan, ids[2]: 0.001}     # ids[3] stays queued: no loss at all
    for rid, loss in losses.items():
        store.claim_run(rid, "w", url=db_url)
        rec = epoch_record(0, seq_len=10)
        rec.val_loss = loss
        store.record_epoch(rid, rec, attempt=1, url=db_url)
    got = reads.list_runs({}, sort="val_loss", url=db_url)[0]["id"].tolist()
    assert got[:2] == [ids[2], ids[0]]                      # ascending by loss, best first
    assert set(got[2:]) == {ids[1], ids[3]}                 # no finite loss: after every run that has one


def test_a_runs_duration_sums_its_attempts_not_the_gap_between_them(db_url):
    """Cancelled after 2 s, re-queued, and run again for 1 s 8 s later: the Runs page showed 11 s (first
    start to last end). The duration is the attempts' time on a worker: 3 s."""
    from sqlalchemy import update

    from db.engine import session
    from db.models import Run, RunAttempt
    from db.reads import list_runs, runs_by_ids

    (rid,) = store.create_runs([parse_spec({"hidden_size": 4, "epochs": 1})], url=db_url)
    store.claim_run(rid, "w1", url=db_url)
    store.finish_run(rid, "cancelled", "cancelled", attempt=1, url=db_url)
    store.requeue_run(rid, url=db_url)
    store.claim_run(rid, "w2", url=db_url)
    store.finish_run(rid, "succeeded", "done", attempt=2, url=db_url)
    t0 = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)
    at = [(t0, t0 + dt.timedelta(seconds=2)), (t0 + dt.timedelta(seconds=10), t0 + dt.timedelta(seconds=11))]
    with session(db_url, write=True) as s:
        for n, (a, b) in enumerate(at, start=1):
            s.execute(update(RunAttempt).where(RunAttempt.run_id == rid, RunAttempt.attempt == n)
                      .values(started_at=a, ended_at=b))
        s.execute(update(Run).where(Run.id == rid).values(started_at=at[0][0], finished_at=at[1][1]))
    row = list_runs({}, 0, 10, url=db_url)[0].set_index("id").loc[rid]
    assert row["duration_s"] == pytest.approx(3.0)
    assert runs_by_ids([rid], url=db_url).iloc[0]["duration_s"] == pytest.approx(3.0)
