"""Tasks: build the task named by a spec (``make_task``)."""

from __future__ import annotations

from rnnlab import spec as S

from .base import Batch, Task, rng_for
from .synthetic import AddingTask, CopyTask, TemporalOrderTask


def make_task(task: S.TaskSpec, seed: int) -> Task:
    """The task object for ``spec.task`` (data depends only on ``seed``)."""
    if isinstance(task, S.AddingTask):
        return AddingTask(seed, task.variant, task.seq_len)
    if isinstance(task, S.CopyTask):
        return CopyTask(seed, task.seq_len, task.n_symbols, task.n_copy)
    if isinstance(task, S.TemporalOrderTask):
        return TemporalOrderTask(seed, task.seq_len)
    if isinstance(task, S.DigitsTask):
        from .digits import DigitsTask
        return DigitsTask(seed, task.permuted, task.perm_seed)
    if isinstance(task, S.CharLMTask):
        from .charlm import CharLMTask
        return CharLMTask(seed, task.path, task.seq_len)
    if isinstance(task, S.ForecastTask):
        from .forecast import ForecastTask
        return ForecastTask(seed, task.series, task.path, task.seq_len)
    raise ValueError(f"task.name: got {task.name!r}; allowed: {', '.join(S.TASK_NAMES)}")


__all__ = ["Batch", "Task", "make_task", "rng_for"]
