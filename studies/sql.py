"""The SQL that re-derives a study's per-run numbers from the results database (both backends).

Each query returns one row per finished run of the study: the group, the seed and the value(s).
SQLite stores NaN as NULL (the row's ``nan_fields`` names such columns); Postgres keeps NaN.
"""

from __future__ import annotations

FINISHED = "('succeeded', 'diverged')"


def _q(tag: str) -> str:
    return "'" + tag.replace("'", "''") + "'"


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
