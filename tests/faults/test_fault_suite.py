"""The short subset of the fault suite (bench/faults) that CI runs, on the suite's own Redis and
PostgreSQL: a worker SIGKILLed mid-epoch, empty and corrupt broker messages (filesystem and Redis),
a Postgres restart. Each must end with every run final, none lost and none duplicated. Plus a check
that the audit behind those counts does see lost and duplicated runs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, update

from bench.faults import harness as h
from bench.faults.scenarios import POSTGRES, SQLITE, Context, corrupt_message, postgres_restart, sigkill_mid_epoch


@pytest.fixture(scope="module")
def ctx():
    c = Context()
    yield c
    c.close()


def explain(res) -> str:
    return f"{res.fault} on {res.backend}: {res.outcome}; " + "; ".join(res.details)


@pytest.mark.timeout(240)
def test_sigkill_mid_epoch_loses_and_duplicates_nothing(ctx):
    res = sigkill_mid_epoch(ctx, POSTGRES, runs=2)
    assert (res.runs, res.lost, res.duplicated) == (2, 0, 0), explain(res)
    assert "attempt(s) lost and resumed" in res.outcome, explain(res)   # the kill did hit a running run
    assert res.holds, explain(res)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", [SQLITE, POSTGRES])
def test_empty_and_corrupt_broker_messages_are_survived(ctx, backend):
    res = corrupt_message(ctx, backend)
    assert (res.runs, res.lost, res.duplicated) == (6, 0, 0), explain(res)
    assert res.holds, explain(res)   # no worker crashed, every run succeeded


@pytest.mark.timeout(240)
def test_postgres_restart_loses_and_duplicates_nothing(ctx):
    res = postgres_restart(ctx, runs=2)
    assert (res.runs, res.lost, res.duplicated) == (2, 0, 0), explain(res)
    assert res.holds, explain(res)   # a short outage fails no run


def _train_and_record(url: str, sp) -> int:
    """One run trained in this process and recorded as a worker would (claim, epochs, finish)."""
    import models
    from db import store

    (run_id,) = store.create_runs([sp], url=url)
    attempt = store.claim_run(run_id, "audit-test", url=url)["attempt"]
    models.train(sp, on_epoch=lambda rec: store.record_epoch(run_id, rec, attempt=attempt, url=url))
    store.finish_run(run_id, "succeeded", None, attempt=attempt, url=url)
    return run_id


@pytest.mark.timeout(120)
def test_audit_counts_lost_and_duplicated_runs(sqlite_url):
    from db import store
    from db.engine import session
    from db.models import Epoch, Run, RunAttempt

    sp = h.spec(h.SMALL, 5)
    clean, changed, backwards, twice = (_train_and_record(sqlite_url, sp) for _ in range(4))
    (stuck,) = store.create_runs([sp], url=sqlite_url)
    with session(sqlite_url, write=True) as s:
        s.execute(update(Epoch).where(Epoch.run_id == changed, Epoch.epoch == 1)
                  .values(train_loss=Epoch.train_loss * 1.001))
        s.execute(update(Run).where(Run.id == backwards).values(epochs_done=1))
        t = dt.datetime.now(dt.UTC)
        s.execute(insert(RunAttempt).values(run_id=twice, attempt=2, worker="other", outcome="succeeded",
                                            started_at=t, ended_at=t))
    ids = [clean, changed, backwards, twice, stuck]
    a = h.audit(sqlite_url, ids)
    assert a.lost == [stuck]
    assert sorted(a.duplicated) == sorted([changed, backwards, twice]), a.duplicated
    assert "train_loss" in a.duplicated[changed] and "backwards" in a.duplicated[backwards]
    assert "2 attempts finished it" in a.duplicated[twice]
