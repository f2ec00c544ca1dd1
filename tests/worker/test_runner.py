"""worker.runner pieces that need no worker process: how a claimed run's spec is loaded."""

import pytest

from db import store
from rnnlab.settings import get_settings
from rnnlab.spec import Limits, SpecError, parse_spec
from worker import runner

LONG = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 15_000}, "batch_size": 2, "epochs": 1,
        "device": "cpu"}


@pytest.fixture
def raised_seq_len(monkeypatch):
    """The worker's environment raises the operator's seq_len limit above the default 10,000."""
    monkeypatch.setenv("RNNLAB_MAX_SEQ_LEN", "20000")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_worker_revalidates_under_the_operators_limits(sqlite_url, raised_seq_len):
    with pytest.raises(SpecError):   # the default limits refuse it ...
        parse_spec(LONG)
    spec = parse_spec(LONG, Limits(max_seq_len=20_000))   # ... the operator's accept it (as submit did)
    (run_id,) = store.create_runs([spec], url=sqlite_url)
    run = store.claim_run(run_id, "w1", url=sqlite_url)
    assert runner.load_spec(run).task.seq_len == 15_000


def test_worker_still_refuses_what_the_operators_limits_refuse(sqlite_url, raised_seq_len):
    spec = parse_spec(LONG, Limits(max_seq_len=20_000))
    (run_id,) = store.create_runs([spec], url=sqlite_url)
    run = store.claim_run(run_id, "w1", url=sqlite_url)
    run["spec"] = {**run["spec"], "task": {**run["spec"]["task"], "seq_len": 25_000}}
    with pytest.raises(SpecError, match="the operator's limit is 20000"):
        runner.load_spec(run)
