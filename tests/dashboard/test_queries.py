"""db.queries on real databases: server-side filters and pagination, NaN restored, downsampling
checked against an independent computation, and a SQL console the database keeps read-only."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db import console as c  # noqa: E402
from db import queries as q  # noqa: E402
from db import store  # noqa: E402
from tests.dashboard.seed import records, seed_run, small_lab, spec  # noqa: E402


@pytest.fixture
def seeded(db_url):
    return db_url, small_lab(db_url)


def test_list_runs_filters_and_pages_on_both_backends(seeded):
    url, ids = seeded
    eng = q.engine_for(url)
    df, total = q.list_runs({}, 0, 4, engine=eng)
    assert total == 9 and df["id"].tolist() == [9, 8, 7, 6]
    df, total = q.list_runs({}, 2, 4, engine=eng)
    assert df["id"].tolist() == [1] and total == 9
    assert q.list_runs({"status": ["succeeded"], "cell": ["gru"]}, engine=eng)[0]["id"].tolist() == sorted(
        ids["cells"][4:], reverse=True)
    assert (q.list_runs({"spec": {"task.seq_len": "50", "activation": "relu"}}, engine=eng)[0]["id"].tolist()
            == ids["diverged"])
    assert q.list_runs({"spec": {"optimizer.lr": 0.001}}, engine=eng)[1] == 9
    assert q.list_runs({"spec": {"optimizer.lr": "0.01"}}, engine=eng)[1] == 0
    assert q.list_runs({"tags": ["<b>html</b>"]}, engine=eng)[0]["tags"].tolist() == ["<b>html</b>"]
    assert q.list_runs({"search": "non-finite"}, engine=eng)[0]["id"].tolist() == ids["diverged"]


def test_nan_is_restored_and_summaries_match_the_records(seeded):
    url, ids = seeded
    eng = q.engine_for(url)
    ep = q.epochs(ids["diverged"], engine=eng)
    assert math.isnan(ep["val_loss"].iloc[-1]) and math.isinf(ep["grad_norm_max"].iloc[-1])
    fin = q.final_summary(ids["cells"][:1], engine=eng).iloc[0]
    rec = records(spec("rnn", seed=0))[-1]
    assert fin["val_loss"] == pytest.approx(rec.val_loss) and fin["horizon"] == pytest.approx(rec.layers[0].horizon)


def test_profile_matrix_averages_log_norms_in_blocks(db_url):
    s = spec("lstm", seq_len=1000, epochs=3)
    rid = seed_run(db_url, s)
    recs = records(s)
    m = q.profile_matrix(rid, 0, "h", max_t=100, engine=q.engine_for(db_url))
    assert m["z"].shape == (4, 100) and m["seq_len"] == 1000 and m["epochs"] == [0, 1, 2, 3]
    # independent: mean of log10 over each block of 10 steps, from the records themselves
    expect = np.log10(np.array(recs[2].layers[0].grad_h)).reshape(100, 10).mean(axis=1)
    assert np.allclose(m["z"][2], expect, atol=1e-4)
    assert m["t"][0] == pytest.approx(5.5) and m["t"][-1] == pytest.approx(995.5)


def test_profiles_keep_both_ends_and_take_the_latest_probe_at_or_before_the_epoch(db_url):
    s = spec("rnn", seq_len=900, epochs=4)
    rid = seed_run(db_url, s)
    eng = q.engine_for(db_url)
    p = q.profiles([rid], 2, 0, "h", max_points=300, engine=eng)
    g = records(s)[2].layers[0].grad_h
    assert len(p) == 300 and set(p["epoch"]) == {2}
    assert p["t"].iloc[0] == 1 and p["t"].iloc[-1] == 900 and p["k"].iloc[-1] == 0
    assert p["norm"].iloc[-1] == pytest.approx(g[-1], rel=1e-4) and p["norm"].iloc[0] == pytest.approx(g[0], rel=1e-4)
    assert set(q.profiles([rid], None, 0, engine=eng)["epoch"]) == {4}


def test_histograms_and_workers(seeded):
    url, ids = seeded
    eng = q.engine_for(url)
    h = q.histograms(ids["cells"][:2], None, "weight_hh_l0", engine=eng)
    assert len(h) == 2 and all(len(c) == 50 for c in h["counts"])
    w = q.list_workers(engine=eng, lost_after_s=3600)
    assert [(x["alive"], x["state"]) for x in w] == [(True, "alive")]
    assert [(x["alive"], x["state"]) for x in q.list_workers(engine=eng, lost_after_s=0)] == [(False, "lost")]


def test_find_existing_lists_every_run_of_a_hash_in_id_order(seeded):
    url, ids = seeded
    h = spec("rnn", seed=0).spec_hash()
    # one run of the seed lab has this spec; a second one is submitted with it
    (first,) = q.find_existing([h], engine=q.engine_for(url))[h]
    (again,) = store.create_runs([spec("rnn", seed=0)], url=url)
    assert q.find_existing([h, "0" * 64, h], engine=q.engine_for(url)) == {h: [first, again]}
    assert store.find_existing is q.find_existing   # one implementation, whichever module it is read from


WRITES = [
    "DELETE FROM runs", "UPDATE runs SET status = 'failed'", "INSERT INTO run_tags VALUES (1, 'x')",
    "DROP TABLE run_tags", "CREATE TABLE evil (a int)", "SELECT 1; DELETE FROM runs",
]


@pytest.mark.parametrize("sql", WRITES)
def test_sql_console_refuses_writes_on_both_backends(seeded, sql):
    url, _ = seeded
    with pytest.raises(c.QueryError):
        c.run_sql(sql, 5, 100, url=url)
    assert c.run_sql("SELECT COUNT(*) AS n FROM runs", 5, 100, url=url)[0]["n"].iloc[0] == 9
    assert c.run_sql("SELECT COUNT(*) AS n FROM run_tags", 5, 100, url=url)[0]["n"].iloc[0] > 0


@pytest.mark.parametrize("sql", ["ATTACH '{p}' AS x", "VACUUM INTO '{p}'", "PRAGMA query_only = OFF",
                                 "BEGIN IMMEDIATE"])
def test_sqlite_console_cannot_create_files_or_unlock_itself(sqlite_url, tmp_path, sql):
    target = tmp_path / "created.db"
    with pytest.raises(c.QueryError):
        c.run_sql(sql.format(p=target), 5, 10, url=sqlite_url)
    assert not target.exists()


def test_sql_console_row_limit_and_timeout(seeded):
    url, _ = seeded
    df, truncated = c.run_sql("SELECT id FROM runs ORDER BY id", 5, 4, url=url)
    assert df["id"].tolist() == [1, 2, 3, 4] and truncated
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
            if url.startswith("sqlite") else "SELECT pg_sleep(5)")
    with pytest.raises(c.QueryError, match="statement timeout"):
        c.run_sql(slow, 0.5, 10, url=url)


def test_example_queries_all_run_read_only(seeded):
    url, _ = seeded
    from db.examples import example_queries

    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    for _title, sql in example_queries(dialect):
        c.run_sql(sql, 10, 100, url=url)  # raises QueryError on failure
    assert c.example_queries()  # the console's list is not empty


def test_console_on_postgres_needs_the_read_only_role(pg_url, monkeypatch):
    from rnnlab.settings import get_settings

    monkeypatch.setenv("RNNLAB_DATABASE_URL", pg_url)
    monkeypatch.delenv("RNNLAB_READONLY_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(c.QueryError, match="RNNLAB_READONLY_DATABASE_URL"):
            c.run_sql("SELECT 1 AS one", 5, 10)
        monkeypatch.setenv("RNNLAB_READONLY_DATABASE_URL", pg_url)  # a role URL is given: it runs
        get_settings.cache_clear()
        assert c.run_sql("SELECT 1 AS one", 5, 10)[0]["one"].iloc[0] == 1
    finally:
        get_settings.cache_clear()
