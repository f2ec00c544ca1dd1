"""submit() validates every spec again, whoever built it: a JobSpec changed with model_copy (which does not
validate) is refused with the schema's messages, naming each field, and nothing is written or sent.
Real SQLite database, filesystem broker."""

from __future__ import annotations

import math

import pytest

from client.submit import check_submission, revalidate, submit
from db import store
from rnnlab.spec import Limits, SpecError, SweepSpec, parse_spec

SPEC = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "device": "cpu"}


def _nothing_written(url: str, fs_broker) -> None:
    assert store.list_runs(url=url)[1] == 0
    assert not list((fs_broker.home / "broker" / "queue").glob("*.msg"))


def test_a_model_copied_spec_is_validated_again(sqlite_url, fs_broker):
    # queued before: hidden_size 0, epochs -3, seed -1
    bad = parse_spec(SPEC).model_copy(update={"hidden_size": 0, "epochs": -3, "seed": -1})
    with pytest.raises(SpecError) as e:
        submit([bad], owner="me", url=sqlite_url, app=fs_broker.app())
    assert e.value.errors == [
        "hidden_size: got 0; input should be greater than or equal to 1",
        "epochs: got -3; input should be greater than or equal to 1",
        "seed: got -1; input should be greater than or equal to 0",
    ]
    _nothing_written(sqlite_url, fs_broker)


def test_a_nan_learning_rate_is_named_not_a_database_error(sqlite_url, fs_broker):
    # a raw sqlalchemy StatementError before
    good = parse_spec(SPEC)
    bad = good.model_copy(update={"optimizer": good.optimizer.model_copy(update={"lr": math.nan})})
    with pytest.raises(SpecError) as e:
        submit([parse_spec(SPEC), bad], url=sqlite_url, app=fs_broker.app())
    assert e.value.errors == ["[run 2] optimizer.lr: got nan; must be a finite number"]
    assert check_submission([bad], [], Limits()) == ["optimizer.lr: got nan; must be a finite number"]
    _nothing_written(sqlite_url, fs_broker)


def test_a_valid_spec_is_submitted_unchanged(sqlite_url, fs_broker):
    spec = parse_spec({**SPEC, "init": "orthogonal", "name": "x"})
    again, problems = revalidate(spec)
    assert problems == [] and again == spec and again.spec_hash() == spec.spec_hash()
    (rid,) = submit([spec], url=sqlite_url, app=fs_broker.app())
    assert store.get_run(rid, url=sqlite_url)["spec_hash"] == spec.spec_hash()


def test_a_model_copied_sweep_is_validated_again(sqlite_url, fs_broker):
    sweep = SweepSpec(base=SPEC).model_copy(update={"seeds": [-5]})
    with pytest.raises(SpecError) as e:
        submit([parse_spec(SPEC)], sweep=sweep, url=sqlite_url, app=fs_broker.app())
    assert e.value.errors == ["sweep: seeds: 1 negative seed (-5); seeds must be ≥ 0"]
    _nothing_written(sqlite_url, fs_broker)
