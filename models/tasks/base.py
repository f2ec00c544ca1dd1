"""The task interface: seeded batches, a fixed held-out set and probe batch, loss, metric, baseline
(analytic, and the trivial predictor's loss on the held-out set itself)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Independent random streams: a batch is a pure function of (seed, stream, epoch, step).
TRAIN, HELDOUT, PROBE = 0, 1, 2


def rng_for(seed: int, stream: int, epoch: int = 0, step: int = 0) -> np.random.Generator:
    """A numpy generator that depends only on (seed, stream, epoch, step)."""
    return np.random.default_rng([seed, stream, epoch, step])


@dataclass
class Batch:
    """Time-major inputs ``x`` (T, B, input_size) and targets ``y`` ((B,)/(B,1) or (T, B)/(T, B, 1))."""

    x: torch.Tensor
    y: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))

    @property
    def size(self) -> int:
        return self.x.shape[1]


class Task:
    """A sequence task. Subclasses set the class attributes and implement ``make_batch``."""

    name: str
    variant: str
    input_size: int
    output_size: int
    output_mode: str          # "last": one output at the final step; "every": an output at every step
    loss_name: str            # "mse" or "cross_entropy" (both with mean reduction)
    metric_name: str
    higher_is_better: bool
    baseline_loss: float
    baseline_metric: float
    heldout_size: int = 256
    eval_batch: int = 256

    def __init__(self, seed: int):
        self.seed = seed
        self._heldout: list[Batch] | None = None
        self._probe: dict[int, Batch] = {}
        self._baseline_heldout: float | None = None

    # -- data ------------------------------------------------------------------------------
    def make_batch(self, rng: np.random.Generator, batch_size: int, split: str) -> Batch:
        raise NotImplementedError

    def batch(self, epoch: int, step: int, batch_size: int) -> Batch:
        """The training batch of (epoch, step): a pure function of (seed, epoch, step)."""
        return self.make_batch(rng_for(self.seed, TRAIN, epoch, step), batch_size, "train")

    def heldout(self) -> list[Batch]:
        """The fixed held-out set (drawn once from the seed), in evaluation-sized batches."""
        if self._heldout is None:
            sizes = [self.eval_batch] * (self.heldout_size // self.eval_batch)
            if self.heldout_size % self.eval_batch:
                sizes.append(self.heldout_size % self.eval_batch)
            self._heldout = [
                self.make_batch(rng_for(self.seed, HELDOUT, 0, i), n, "heldout") for i, n in enumerate(sizes)
            ]
        return self._heldout

    def probe(self, batch_size: int) -> Batch:
        """The fixed probe batch (the same every epoch)."""
        if batch_size not in self._probe:
            self._probe[batch_size] = self.make_batch(rng_for(self.seed, PROBE), batch_size, "heldout")
        return self._probe[batch_size]

    # -- loss and metric -------------------------------------------------------------------
    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss over every output (examples × steps for 'every' tasks)."""
        if self.loss_name == "mse":
            return F.mse_loss(out.reshape(y.shape), y)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def loss_per_sequence(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each sequence's own mean loss over its outputs (float64, shape (B,)); for equal-length
        sequences their mean is ``loss``."""
        if self.loss_name == "mse":
            err = (out.reshape(y.shape).double() - y.double()) ** 2
        else:
            logits = out.reshape(-1, out.shape[-1]).double()
            err = F.cross_entropy(logits, y.reshape(-1), reduction="none").reshape(y.shape)
        if self.output_mode == "every":   # time-major (T, B, ...) → batch first
            err = err.transpose(0, 1)
        return err.reshape(err.shape[0], -1).mean(1)

    def trivial_output(self, b: Batch) -> torch.Tensor:
        """What the trivial predictor behind ``baseline_loss`` outputs for batch b (the model's shape)."""
        raise NotImplementedError

    def baseline_heldout_loss(self) -> float:
        """The trivial predictor's mean loss on this task's own held-out set (NaN when it is undefined
        there, e.g. a unigram model that gives a held-out character probability 0)."""
        if self._baseline_heldout is None:
            losses = torch.cat([self.loss_per_sequence(self.trivial_output(b), b.y) for b in self.heldout()])
            value = float(losses.mean())
            self._baseline_heldout = value if math.isfinite(value) else math.nan
        return self._baseline_heldout

    def last_step_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of the final step only (equal to ``loss`` for 'last' tasks)."""
        if self.output_mode == "last":
            return self.loss(out, y)
        return self.loss(out[-1:], y[-1:])

    def metric(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task metric of one batch, as a 0-d tensor (averaged over examples)."""
        raise NotImplementedError


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).double().mean()


def entropy_nats(counts: np.ndarray) -> float:
    """Entropy (nats) of a distribution given by counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


LN2 = math.log(2.0)


def read_data_file(path: str) -> bytes:
    """The bytes of a task's data file (``task.path``): a regular file of at most
    rnnlab.spec.MAX_DATA_FILE_BYTES, its size checked with os.stat before anything is read and the read
    bounded (a file that grew after the stat is refused too); an EngineError naming task.path otherwise."""
    from rnnlab.spec import MAX_DATA_FILE_BYTES as cap

    from ..errors import EngineError

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EngineError(f"task.path: file not found: {path}") from None
    except OSError as e:
        raise EngineError(f"task.path: cannot read {path} ({e.strerror})") from None
    if not os.path.isfile(path):
        raise EngineError(f"task.path: {path} is not a regular file")
    too_big = (f"task.path: {path} is {{}} bytes; a data file may have at most {cap:,} bytes "
               f"(rnnlab.spec.MAX_DATA_FILE_BYTES)")
    if st.st_size > cap:
        raise EngineError(too_big.format(f"{st.st_size:,}"))
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)
    except OSError as e:
        raise EngineError(f"task.path: cannot read {path} ({e.strerror})") from None
    if len(raw) > cap:   # it grew after the stat
        raise EngineError(too_big.format(f"more than {cap:,}"))
    return raw
