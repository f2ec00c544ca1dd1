"""One-step-ahead forecasting: sine mixtures, Mackey–Glass (τ = 17), or the numeric columns of a CSV."""

from __future__ import annotations

import csv
import io
import math
from functools import lru_cache

import numpy as np
import torch

from ..errors import EngineError
from .base import Batch, Task, read_data_file

HELDOUT_FRACTION = 0.2
MG_TAU, MG_DT, MG_SUBSTEPS, MG_WARMUP = 17.0, 0.1, 10, 1000   # Euler step 0.1, one sample per time unit


@lru_cache(maxsize=4)
def mackey_glass(n: int) -> np.ndarray:
    """n samples (one per time unit) of dx/dt = 0.2·x(t−τ)/(1+x(t−τ)^10) − 0.1·x(t), τ = 17, by
    Euler steps of 0.1 from a constant history x = 1.2, after a warm-up of 1000 time units."""
    lag = int(round(MG_TAU / MG_DT))
    total = (n + MG_WARMUP) * MG_SUBSTEPS
    x = np.empty(total + lag + 1)
    x[: lag + 1] = 1.2
    for i in range(lag, lag + total):
        d = x[i - lag]
        x[i + 1] = x[i] + MG_DT * (0.2 * d / (1.0 + d ** 10) - 0.1 * x[i])
    return x[lag + 1 + MG_WARMUP * MG_SUBSTEPS::MG_SUBSTEPS][:n].copy()


def read_csv_columns(path: str) -> np.ndarray:
    """The numeric columns of a CSV file (a header row is skipped) as a (rows, columns) array; the file
    has at most MAX_DATA_FILE_BYTES (checked before it is read, models.tasks.base.read_data_file)."""
    text = read_data_file(path).decode("utf-8-sig")   # strict, as the locale-encoded open() was
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    if rows and not all(_is_number(v) for v in rows[0] if v.strip()):
        rows = rows[1:]
    if not rows:
        raise EngineError(f"task.path: {path} has no data rows")
    width = max(len(r) for r in rows)
    cols = []
    for j in range(width):
        vals = [r[j] if j < len(r) else "" for r in rows]
        if all(_is_number(v) for v in vals):
            cols.append([float(v) for v in vals])
    if not cols:
        raise EngineError(f"task.path: {path} has no column in which every value is a number")
    return np.asarray(cols, dtype=np.float64).T


def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


class ForecastTask(Task):
    """Predict x_{t+1} from x_1..x_t at every step (MSE, mean over steps and examples).
    Baseline: persistence (predict x_t), its MSE measured on the held-out set."""

    name = "forecast"
    input_size = 1
    output_size = 1
    output_mode = "every"
    loss_name = "mse"
    metric_name = "mse"
    higher_is_better = False

    def __init__(self, seed: int, series: str, path: str | None, seq_len: int):
        super().__init__(seed)
        self.variant, self.seq_len = series, seq_len
        self.series = None
        if series == "mackey_glass":
            self.series = self._standardize(mackey_glass(max(10_000, 20 * (seq_len + 1)))[:, None])
        elif series == "csv":
            self.series = self._standardize(read_csv_columns(path))
        self.baseline_loss = self.baseline_heldout_loss()   # persistence, measured on the held-out set
        self.baseline_metric = self.baseline_loss

    def _standardize(self, s: np.ndarray) -> np.ndarray:
        """Scale each column by the mean and std of its training part (the first 80% of rows)."""
        n_train = int(len(s) * (1 - HELDOUT_FRACTION))
        if len(s) - n_train < self.seq_len + 1:
            raise EngineError(
                f"task.seq_len: got {self.seq_len}; the held-out part (last 20%) of the series has only "
                f"{len(s) - n_train} rows, fewer than seq_len + 1 — use a shorter seq_len or a longer series")
        mu, sd = s[:n_train].mean(0), s[:n_train].std(0)
        return ((s - mu) / np.where(sd > 0, sd, 1.0)).astype(np.float32)

    def _sines(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """Three sines per sequence: amplitude U[0.2, 1], period U[4, 40] steps, random phase; /3."""
        t = np.arange(self.seq_len + 1)[:, None, None]
        amp = rng.uniform(0.2, 1.0, (1, B, 3))
        omega = 2 * np.pi / rng.uniform(4.0, 40.0, (1, B, 3))
        phase = rng.uniform(0, 2 * np.pi, (1, B, 3))
        return ((amp * np.sin(omega * t + phase)).sum(-1) / 3).astype(np.float32)

    def _windows(self, rng: np.random.Generator, B: int, split: str) -> np.ndarray:
        n_train = int(len(self.series) * (1 - HELDOUT_FRACTION))
        lo, hi = (0, n_train) if split == "train" else (n_train, len(self.series))
        hi -= self.seq_len + 1
        if hi < lo:
            raise EngineError(f"task.seq_len: got {self.seq_len}; the training part of the series is too "
                              f"short for windows of seq_len + 1 = {self.seq_len + 1} rows")
        starts = rng.integers(lo, hi + 1, B)
        cols = rng.integers(self.series.shape[1], size=B)
        idx = starts[None, :] + np.arange(self.seq_len + 1)[:, None]
        return self.series[idx, cols[None, :]]

    def make_batch(self, rng: np.random.Generator, batch_size: int, split: str) -> Batch:
        s = self._sines(rng, batch_size) if self.series is None else self._windows(rng, batch_size, split)
        s = torch.from_numpy(np.ascontiguousarray(s))[:, :, None]
        return Batch(s[:-1], s[1:])

    def metric(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((out.reshape(y.shape) - y) ** 2).double().mean()

    def trivial_output(self, b: Batch) -> torch.Tensor:
        """Persistence: predict x_{t+1} = x_t."""
        return b.x
