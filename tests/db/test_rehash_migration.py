"""Migration 0003 re-hashes runs stored before the canonical spec form, so equivalent specs that
were stored under different hashes become one spec (and duplicate detection finds them)."""

from __future__ import annotations

from datetime import UTC

from alembic import command
from sqlalchemy import text

from db.engine import dispose_all, get_engine
from db.migrate import alembic_config, upgrade
from rnnlab.spec import parse_spec


def _insert_old_run(url: str, spec_dict: dict, old_hash: str) -> int:
    import json
    from datetime import datetime

    with get_engine(url).begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (spec, spec_version, spec_hash, task, cell, init, clip, seq_len, hidden_size, "
            "num_layers, seed, queue, status, cancel_requested, created_at, attempts, max_attempts, "
            "epochs_total, epochs_done) VALUES (:spec, 1, :h, 'adding', 'rnn', 'xavier', 'none', 10, 8, 1, 0, "
            "'cpu', 'queued', false, :t, 0, 3, 1, 0)"),
            {"spec": json.dumps(spec_dict), "h": old_hash, "t": datetime.now(UTC)})
        return conn.execute(text("SELECT max(id) FROM runs")).scalar_one()


def test_rows_stored_under_the_written_form_get_the_canonical_hash(db_url):
    # both spellings describe one tanh RNN: activation omitted vs written out
    implicit = parse_spec({"cell": "rnn", "hidden_size": 8, "task": {"name": "adding", "seq_len": 10}})
    explicit = parse_spec({"cell": "rnn", "activation": "tanh", "hidden_size": 8,
                           "task": {"name": "adding", "seq_len": 10}})
    assert implicit.spec_hash() == explicit.spec_hash()
    assert implicit.legacy_hash() != explicit.legacy_hash()   # what rows created before 0003 hold

    command.downgrade(alembic_config(db_url), "0002")
    dispose_all()
    a = _insert_old_run(db_url, implicit.to_dict(), implicit.legacy_hash())
    b = _insert_old_run(db_url, explicit.to_dict(), explicit.legacy_hash())
    broken = _insert_old_run(db_url, {"cell": "nonsense"}, "kept-as-is")
    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        hashes = dict(conn.execute(text("SELECT id, spec_hash FROM runs")).all())
    assert hashes[a] == hashes[b] == implicit.spec_hash()
    assert hashes[broken] == "kept-as-is"
