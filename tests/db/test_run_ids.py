"""Run ids are never reused (issue #10: an old /run?run=26 link showed another experiment).

SQLite hands out max(id)+1 unless the table is AUTOINCREMENT; migration 0004 rebuilds ``runs`` with
it. The rebuild must keep every row and every child row (it runs with foreign keys off)."""

import sqlite3

from db.migrate import upgrade
from db.store import create_runs, delete_run, record_epoch, record_info
from rnnlab.spec import parse_spec
from tests.synthetic import epoch_record, run_info


def _spec(seed: int):
    return parse_spec({"cell": "rnn", "activation": "tanh", "seed": seed, "epochs": 1,
                       "task": {"name": "adding", "seq_len": 20}})


def test_a_deleted_runs_id_is_never_given_to_a_new_run(db_url):
    ids = create_runs([_spec(1), _spec(2), _spec(3)], url=db_url)
    delete_run(ids[-1], url=db_url)
    (new,) = create_runs([_spec(4)], url=db_url)
    assert new > ids[-1], f"run id {ids[-1]} was deleted and then reused"


def _counts(path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("runs", "epochs", "param_stats", "layer_stats", "grad_profiles", "histograms")}
    finally:
        con.close()


def test_the_rebuild_keeps_every_row_and_child_row(tmp_path):
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0003")
    ids = create_runs([_spec(s) for s in range(1, 6)], url=url)
    for rid in ids:
        record_info(rid, run_info(seq_len=20), attempt=None, url=url)
        for e in range(2):
            record_epoch(rid, epoch_record(e, seq_len=20), attempt=None, url=url)
    delete_run(ids[1], url=url)          # a hole below the maximum
    before = _counts(path)
    con = sqlite3.connect(path)
    runs_before = con.execute("SELECT * FROM runs ORDER BY id").fetchall()
    con.close()

    assert upgrade(url, "0004") == "0004"

    assert _counts(path) == before
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT * FROM runs ORDER BY id").fetchall() == runs_before
        assert "AUTOINCREMENT" in con.execute("SELECT sql FROM sqlite_master WHERE name='runs'").fetchone()[0]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # the status check constraint survived the rebuild
        try:
            con.execute("UPDATE runs SET status='bogus' WHERE id=?", (ids[0],))
            raise AssertionError("the rebuilt runs table accepted status 'bogus'")
        except sqlite3.IntegrityError:
            pass
    finally:
        con.close()
    # cascades still work after the rebuild: deleting a run removes its epochs
    delete_run(ids[0], url=url)
    after = _counts(path)
    assert after["runs"] == before["runs"] - 1 and after["epochs"] == before["epochs"] - 2
    (new,) = create_runs([_spec(99)], url=url)
    assert new == ids[-1] + 1


def test_an_in_memory_database_survives_its_migration_with_foreign_keys_on():
    """The file case throws the migration's connection away; an in-memory database lives only in that
    connection, so it keeps it and turns foreign keys back on."""
    from sqlalchemy import inspect

    from db.engine import get_engine
    from db.migrate import ensure_schema
    from db.models import Base

    url = "sqlite://"
    ensure_schema(url)
    eng = get_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(eng).get_table_names())
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
