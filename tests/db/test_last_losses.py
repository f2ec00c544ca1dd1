"""db.queries on both backends: the one reading of a run's last val loss (the runs row keeps a NaN
loss as NULL, so a diverged run's loss is restored from its last epoch), and the heatmap's time
blocks, where a norm of 0 or inf is never averaged away."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db import queries as q  # noqa: E402
from db import store  # noqa: E402
from tests.dashboard.seed import info_for, records, seed_run, spec  # noqa: E402


def _run_with(url: str, s, recs, status: str = "diverged") -> int:
    (rid,) = store.create_runs([s], url=url)
    store.claim_run(rid, "w", url=url)
    store.record_info(rid, info_for(s), attempt=1, url=url)
    for rec in recs:
        store.record_epoch(rid, rec, attempt=1, url=url)
    if status != "running":
        store.finish_run(rid, status, "ended", attempt=1, url=url)
    return rid


def test_last_val_losses_restores_nan_and_inf_on_both_backends(db_url):
    nan_run = seed_run(db_url, spec("rnn", seed=7), status="diverged")      # last epoch's val_loss NaN
    s = spec("rnn", seed=8)
    recs = records(s, diverge_at=2)
    recs[-1].val_loss = math.inf
    inf_run = _run_with(db_url, s, recs)
    s = spec("rnn", seed=9)
    recs = records(s, diverge_at=3)
    recs[-1].val_loss = -math.inf
    neg_run = _run_with(db_url, s, recs)
    finite = seed_run(db_url, spec("gru", seed=0))
    queued = seed_run(db_url, spec("lstm", seed=0), status="queued")
    # the runs row indeed keeps the NaN as NULL: the reason for this function
    assert store.get_run(nan_run, url=db_url)["last_val_loss"] is None

    got = q.last_val_losses([finite, nan_run, inf_run, neg_run, queued, 10 ** 12, -1, finite],
                            engine=q.engine_for(db_url))
    assert set(got) == {finite, nan_run, inf_run, neg_run}       # no loss yet: left out, not NaN
    assert math.isnan(got[nan_run])
    assert got[inf_run] == math.inf and got[neg_run] == -math.inf
    assert got[finite] == records(spec("gru", seed=0))[-1].val_loss     # full precision, not rounded
    assert q.last_val_losses([], engine=q.engine_for(db_url)) == {}
    with pytest.raises(ValueError, match="at most"):
        q.last_val_losses(range(1, q.MAX_PAGE_SIZE + 2), engine=q.engine_for(db_url))


def test_last_val_losses_is_one_query(sqlite_url):
    from sqlalchemy import event

    ids = [seed_run(sqlite_url, spec("rnn", seed=k), status="diverged") for k in range(3)]
    eng = q.engine_for(sqlite_url)
    seen = []
    listen = lambda *a: seen.append(a[2])  # noqa: E731
    event.listen(eng, "before_cursor_execute", listen)
    try:
        got = q.last_val_losses(ids, engine=eng)
    finally:
        event.remove(eng, "before_cursor_execute", listen)
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert all(math.isnan(got[i]) for i in ids)


def _profile_run(url: str, profiles: list[list[float]]) -> int:
    """A run whose layer-0 ‖∂L/∂h_t‖ profile at epoch e is profiles[e] (planted)."""
    s = spec("rnn", seq_len=len(profiles[0]), epochs=len(profiles) - 1)
    recs = records(s)
    for rec, g in zip(recs, profiles):
        rec.layers[0].grad_h = [float(x) for x in g]
    return _run_with(url, s, recs, status="succeeded")


def test_heatmap_blocks_keep_zeros_and_infinities_on_both_backends(db_url):
    """Blocks of 4 time steps. The old block mean skipped non-finite logs, so [0,0,0,1e-30] read
    1e-30 and [1e30,1e30,inf,1e30] read 1e30: a zero or an infinity vanished from the heatmap."""
    nan = math.nan
    blocks = [
        ([0, 0, 0, 1e-30], -math.inf),           # one zero: −inf, as a geometric mean with a zero is 0
        ([1e30, 1e30, math.inf, 1e30], math.inf),
        ([0, 1.0, math.inf, 1.0], math.inf),     # both: +inf (an overflow is never hidden)
        ([nan, nan, nan, nan], nan),             # NaN only when every entry is NaN
        ([nan, 10.0, 1000.0, nan], 2.0),         # NaN skipped: the mean of log10 10 and log10 1000
        ([1e-3, 1e-1, 10.0, 1e3], 0.0),
    ]
    flat = [x for b, _ in blocks for x in b]
    rid = _profile_run(db_url, [flat, flat[::-1]])
    m = q.profile_matrix(rid, 0, "h", max_t=len(blocks), engine=q.engine_for(db_url))
    assert m["z"].shape[1] == len(blocks)
    want = np.array([w for _, w in blocks])
    for row, expect in ((m["z"][0], want), (m["z"][1], want[::-1])):
        assert np.array_equal(np.isnan(row), np.isnan(expect))
        ok = ~np.isnan(expect)
        assert np.allclose(row[ok], expect[ok], atol=1e-9)   # ±inf must match exactly
    # unthinned (max_t ≥ T): a zero is −inf and an infinity +inf, as in a thinned block
    full = q.profile_matrix(rid, 0, "h", max_t=len(flat), engine=q.engine_for(db_url))["z"][0]
    assert full[0] == -math.inf and full[6] == math.inf and math.isnan(full[12])


def test_no_surface_reads_the_last_loss_from_epochs_on_its_own():
    """Three copies of the NaN workaround (the CLI's runs list, the Runs table, the Run detail header)
    each read the last epoch's val_loss; the Compare summary had none. All four use
    db.queries.last_val_losses: no call of an ``epochs`` read with max_epochs=1 for val_loss is left."""
    import ast

    root = Path(__file__).resolve().parents[2]
    hits = []
    for folder in ("cli", "dashboard", "db", "studies", "rnnlab"):
        for p in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(), filename=str(p))):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                kw = {k.arg: k.value for k in node.keywords}
                one = isinstance(kw.get("max_epochs"), ast.Constant) and kw["max_epochs"].value == 1
                if name == "epochs" and one and "val_loss" in ast.unparse(kw.get("columns", ast.Constant(None))):
                    hits.append(f"{p.relative_to(root)}:{node.lineno}")
    assert not hits, hits
    reads = (root / "dashboard" / "reads.py").read_text()
    table_helper = reads[reads.index("def last_loss_columns"):]
    assert "last_val_losses(" in table_helper.split("\ndef ", 1)[0]   # the tables' helper reads it
    for page in ("runs", "run_detail", "compare"):
        text = (root / "dashboard" / "app_pages" / f"{page}.py").read_text()
        assert "last_val_losses" in text or "last_loss_columns" in text, page
    assert "last_val_losses" in (root / "cli" / "main.py").read_text()
