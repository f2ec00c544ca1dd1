"""`rnnlab train`'s progress bar (worker.foreground.train_foreground)."""

from __future__ import annotations

import io

from rich.console import Console

from rnnlab.spec import parse_spec

TINY = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "steps_per_epoch": 1,
        "batch_size": 4, "probe": {"batch_size": 2}, "device": "cpu"}



def test_the_progress_bar_counts_each_step_once_it_is_done(monkeypatch, tmp_path):
    """The engine reports step s (0-based) when it is done; the bar showed s of the total, so it went
    0/10 … 9/10 and never reached 10/10. It counts 1 … 10."""
    import rich.progress

    from worker.foreground import train_foreground

    seen: list[int] = []
    original = rich.progress.Progress.update

    def update(self, task_id, **kw):
        if "completed" in kw:
            seen.append(kw["completed"])
        return original(self, task_id, **kw)

    monkeypatch.setattr(rich.progress.Progress, "update", update)
    spec = parse_spec({**TINY, "epochs": 2, "steps_per_epoch": 5})
    code = train_foreground(spec, json_out=None, record=False, owner=None, tags=[],
                            console=Console(file=io.StringIO(), width=200))
    assert code == 0
    assert seen == list(range(1, 11)), seen
