"""The SQL that re-derives a study's per-run numbers from the results database (both backends).

Each query returns one row per run the analysis read: the group, the seed and the value(s). Those are
the runs of the complete seeds, one per seed and grid point (the latest finished one, studies.core.
chosen_runs): ``runs_used`` names them by id, so the query returns exactly the table's values and
leaves out an incomplete seed, a run still queued or running, and a run a re-run superseded.
SQLite stores NaN as NULL (the row's ``nan_fields`` names such columns); Postgres keeps NaN.

A JSON column (a gradient profile's ``norms``) holds a non-finite value as the string 'NaN', 'Infinity'
or '-Infinity'. Postgres' CAST reads those names; SQLite's reads each as 0. ``json_float`` reads them
on both backends as the Python side does (db.queries decodes them to NaN, ∞, −∞): ±∞ as ±∞, and NaN as
NaN on Postgres and NULL on SQLite (which has no NaN), never as 0.
"""

from __future__ import annotations

FINISHED = "('succeeded', 'diverged')"


def runs_used(d) -> str:
    """The WHERE condition (on ``r``, the runs table) that keeps the runs of ``d`` (a StudyData: the runs
    the analysis read), with a comment that says which runs those are."""
    ids = sorted(int(i) for i in d.runs["id"]) if len(d.runs) else []
    seeds = sorted({int(s) for s in d.runs["seed"]}) if len(d.runs) else []
    inside = ", ".join(map(str, ids)) if ids else "NULL"
    return (f"r.status IN {FINISHED}\n"
            f"  AND r.id IN ({inside}) /* the runs analysed: of each complete seed "
            f"({', '.join(map(str, seeds)) or 'none'}) and grid point, the latest finished one */")


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


def final_epoch(d, group_col: str, cols: str = "e.val_loss, r.baseline_loss") -> str:
    """The last recorded epoch's values (val_loss, val_metric, grad norms …) per run of ``d`` (a
    StudyData: its tag and the runs the analysis read, ``runs_used``)."""
    tag = d.tag
    return (f"SELECT r.{group_col} AS grp, r.seed, {cols}\n"
            f"FROM runs r\n"
            f"JOIN run_tags g ON g.run_id = r.id AND g.tag = {_q(tag)}\n"
            f"JOIN epochs e ON e.run_id = r.id\n"
            f" AND e.epoch = (SELECT max(e2.epoch) FROM epochs e2 WHERE e2.run_id = r.id)\n"
            f"WHERE {runs_used(d)}\n"
            f"ORDER BY grp, r.seed;")


def layer0(d, group_col: str, cols: str, at: str = "init") -> str:
    """Layer 0's probe values per run of ``d`` (as ``final_epoch``) at initialization (epoch 0) or at the
    last probe."""
    tag = d.tag
    if at == "init":
        when = " AND l.epoch = 0"
    else:
        when = (" AND l.epoch = (SELECT max(l2.epoch) FROM layer_stats l2\n"
                "                WHERE l2.run_id = r.id AND l2.layer = 0)")
    return (f"SELECT r.{group_col} AS grp, r.seed, {cols}\n"
            f"FROM runs r\n"
            f"JOIN run_tags g ON g.run_id = r.id AND g.tag = {_q(tag)}\n"
            f"JOIN layer_stats l ON l.run_id = r.id AND l.layer = 0{when}\n"
            f"WHERE {runs_used(d)}\n"
            f"ORDER BY grp, r.seed;")
