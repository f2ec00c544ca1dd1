"""The fastest built-in studies run end to end on a real Celery worker process (filesystem broker, SQLite):
submitted through studies.service (client.submit), trained by the worker, read back through
db.queries, decided, and reported. Its verdict must be the one calibrated in docs/studies.md."""

from __future__ import annotations

import time

import pytest

import studies
from studies import service


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("name", "runs", "counts"), [
    ("activations", 9, {"succeeded": 9}),
    ("exploding", 6, {"succeeded": 3, "diverged": 3}),   # the unclipped arm diverges on every seed
])
def test_fast_study_on_a_real_worker_is_reproduced(name, runs, counts, sqlite_url, fs_broker, start_worker,
                                                   tmp_path):
    st = studies.get(name)
    w = start_worker(sqlite_url, fs_broker)
    ids = service.submit(st, "cpu", owner="test", url=sqlite_url, app=fs_broker.app())
    assert len(ids) == st.n_runs("cpu") == runs
    deadline = time.monotonic() + 600
    while True:
        out = service.outcome(st, "cpu", sqlite_url)
        if out.verdict != studies.PENDING:
            break
        assert time.monotonic() < deadline, f"still pending: {out.counts}\n{w.log()[-3000:]}"
        time.sleep(1)
    assert out.counts == counts
    assert out.verdict == studies.REPRODUCED, [(c.text, c.per_seed) for c in out.checks]
    # a second submission at the same scale is refused: it would mix two sets of runs
    with pytest.raises(service.StudyError, match=f"already has {runs} run"):
        service.submit(st, "cpu", url=sqlite_url, app=fs_broker.app())
    html, md, rep = service.write_report(st, "cpu", tmp_path / "report.html", url=sqlite_url)
    text = html.read_text()
    assert rep.verdict == studies.REPRODUCED and "reproduced" in text and text.count("<svg") == len(rep.figures)
    assert st.tag("cpu") in md.read_text()
