"""The SQL that re-derives a study's per-run numbers from the results database (both backends).

Each query returns one row per finished run of the study: the group, the seed and the value(s).
SQLite stores NaN as NULL (the row's ``nan_fields`` names such columns); Postgres keeps NaN.

A JSON column (a gradient profile's ``norms``) holds a non-finite value as the string 'NaN', 'Infinity'
or '-Infinity'. Postgres' CAST reads those names; SQLite's reads each as 0. ``json_float`` reads them
on both backends as the Python side does (db.queries decodes them to NaN, ∞, −∞): ±∞ as ±∞, and NaN as
NaN on Postgres and NULL on SQLite (which has no NaN), never as 0.
"""

from __future__ import annotations

FINISHED = "('succeeded', 'diverged')"


def _q(tag: str) -> str:
    return "'" + tag.replace("'", "''") + "'"


def json_float(v: str) -> str:
    """An SQL expression for the number held in ``v``, a JSON element read as text (``->>``), that keeps
    the non-finite names (see the module's doc). ``CAST('Infinity' AS DOUBLE PRECISION) = 0`` is true on
    SQLite only; there 'Infinity' is read as the overflowing 1e999 (= ∞) and 'NaN' as NULL. ``v`` should
    be a plain column name: it is repeated."""
    return (f"CASE WHEN {v} IN ('NaN', 'Infinity', '-Infinity') AND CAST('Infinity' AS DOUBLE PRECISION) = 0\n"
            f"            THEN CAST(NULLIF(REPLACE({v}, 'Infinity', '1e999'), 'NaN') AS DOUBLE PRECISION)\n"
            f"            ELSE CAST({v} AS DOUBLE PRECISION) END")


def final_epoch(tag: str, group_col: str, cols: str = "e.val_loss, r.baseline_loss") -> str:
    """The last recorded epoch's values (val_loss, val_metric, grad norms …) per run."""
    return (f"SELECT r.{group_col} AS grp, r.seed, {cols}\n"
            f"FROM runs r\n"
            f"JOIN run_tags g ON g.run_id = r.id AND g.tag = {_q(tag)}\n"
            f"JOIN epochs e ON e.run_id = r.id\n"
            f" AND e.epoch = (SELECT max(e2.epoch) FROM epochs e2 WHERE e2.run_id = r.id)\n"
            f"WHERE r.status IN {FINISHED}\n"
            f"ORDER BY grp, r.seed;")


def layer0(tag: str, group_col: str, cols: str, at: str = "init") -> str:
    """Layer 0's probe values per run at initialization (epoch 0) or at the last probe."""
    if at == "init":
        when = " AND l.epoch = 0"
    else:
        when = (" AND l.epoch = (SELECT max(l2.epoch) FROM layer_stats l2\n"
                "                WHERE l2.run_id = r.id AND l2.layer = 0)")
    return (f"SELECT r.{group_col} AS grp, r.seed, {cols}\n"
            f"FROM runs r\n"
            f"JOIN run_tags g ON g.run_id = r.id AND g.tag = {_q(tag)}\n"
            f"JOIN layer_stats l ON l.run_id = r.id AND l.layer = 0{when}\n"
            f"WHERE r.status IN {FINISHED}\n"
            f"ORDER BY grp, r.seed;")
