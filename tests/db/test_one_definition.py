"""One definition of each thing (issue #12): the source tree is parsed and every definition of a read,
a run label, the final statuses, the worker liveness rule and the settings class is counted. Each
check names where the extra definitions are, so a second copy fails with its file and line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", "tests", "migrations", "node_modules", ".git", "build", "rnnlab.egg-info"}


def _sources() -> list[tuple[str, ast.Module]]:
    out = []
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if SKIP.intersection(rel.parts):
            continue
        out.append((str(rel), ast.parse(p.read_text(), filename=str(rel))))
    return out


SOURCES = _sources()


def _where(hits: list[tuple[str, int]]) -> str:
    return ", ".join(f"{f}:{line}" for f, line in hits)


def _module_defs(names: set[str], under: tuple[str, ...] = ("",)) -> list[tuple[str, int]]:
    """Top-level functions with one of ``names`` in files under one of the folders ``under``."""
    return [(f, n.lineno) for f, tree in SOURCES if f.startswith(under) for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name in names]


@pytest.mark.parametrize("names", [{"list_runs"}, {"find_existing"}, {"runs_by_ids"}, {"status_counts"},
                                   {"list_workers", "workers"}, {"run_filters", "_run_filters"}])
def test_each_read_is_defined_once_in_db(names):
    """(dashboard/reads.py wraps some of them in Streamlit's cache under the same names: no SQL there.)"""
    hits = _module_defs(names, ("db/",))
    assert len(hits) == 1, f"{sorted(names)} defined {len(hits)} times: {_where(hits)}"


def test_one_run_lookup():
    hits = _module_defs({"get_run", "run"}, ("db/",))
    assert [f for f, _ in hits] == ["db/reads.py"], _where(hits)


def _str_collections():
    for f, tree in SOURCES:
        for n in ast.walk(tree):
            if isinstance(n, (ast.Tuple, ast.List, ast.Set)) and n.elts and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in n.elts):
                yield f, n.lineno, {e.value for e in n.elts}


def test_the_final_statuses_are_written_down_once():
    from rnnlab.records import FINAL_STATUSES, RUN_STATUSES

    for statuses in (FINAL_STATUSES, RUN_STATUSES):
        hits = [(f, line) for f, line, values in _str_collections() if values == set(statuses)]
        assert len(hits) == 1 and hits[0][0] == "rnnlab/records.py", f"{statuses}: {_where(hits)}"
    from db import models

    assert models.FINAL_STATUSES is FINAL_STATUSES and models.RUN_STATUSES is RUN_STATUSES


# a run label: the text of an f-string with its fields blanked reads 'T={} ... s{}' (seq_len ... seed)
_LABEL = re.compile(r"T=\{\}.* s\{\}")


def _fstring_text(n: ast.JoinedStr) -> str:
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)


def test_one_run_label_format():
    hits = [(f, n.lineno) for f, tree in SOURCES for n in ast.walk(tree)
            if isinstance(n, ast.JoinedStr) and _LABEL.search(_fstring_text(n))]
    assert [f for f, _ in hits] == ["rnnlab/records.py"], _where(hits)
    assert len(_module_defs({"run_label"})) == 1, _where(_module_defs({"run_label"}))


def test_worker_liveness_is_judged_in_one_place():
    """Only db/liveness.py compares a heartbeat's age with the lost-after threshold."""
    hits = []
    for f, tree in SOURCES:
        for n in ast.walk(tree):
            if isinstance(n, ast.Compare) and f != "db/liveness.py":
                text = " ".join(ast.unparse(x) for x in (n.left, *n.comparators) if not isinstance(x, ast.Call))
                if "heartbeat_age" in text or "lost_after" in text:
                    hits.append((f, n.lineno))
    assert not hits, _where(hits)
    assert len(_module_defs({"worker_state"})) == 1


def test_one_settings_class():
    hits = [(f, n.lineno) for f, tree in SOURCES for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
            and any(ast.unparse(b).endswith("BaseSettings") for b in n.bases)]
    assert [f for f, _ in hits] == ["rnnlab/settings.py"], _where(hits)
