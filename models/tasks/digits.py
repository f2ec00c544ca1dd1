"""Sequential (optionally permuted) 8×8 digits from scikit-learn's bundled copy: one pixel per step."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .base import Batch, Task, accuracy, entropy_nats

SPLIT_SEED = 1797   # the train/held-out split is fixed, the same for every run
HELDOUT_FRACTION = 0.2


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


class DigitsTask(Task):
    """1,797 images, pixels scaled to [0, 1], T = 64 steps of one pixel, label predicted at the end.
    A fixed 80/20 split (seed 1797); ``permuted`` applies one fixed pixel permutation (perm_seed)."""

    name = "digits"
    input_size = 1
    output_size = 10
    output_mode = "last"
    loss_name = "cross_entropy"
    metric_name = "accuracy"
    higher_is_better = True
    seq_len = 64

    def __init__(self, seed: int, permuted: bool, perm_seed: int):
        super().__init__(seed)
        self.variant = "permuted" if permuted else "sequential"
        X, y = _digits()
        if permuted:
            X = X[:, np.random.default_rng(perm_seed).permutation(64)]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        n_held = int(round(len(y) * HELDOUT_FRACTION))
        self.train_idx, self.held_idx = order[n_held:], order[:n_held]
        self.X, self.y = X, y
        self.heldout_size = n_held
        # the prior predictor: training class frequencies
        counts = np.bincount(y[self.train_idx], minlength=10)
        self.prior = counts / counts.sum()
        self.baseline_loss = entropy_nats(counts)
        self.baseline_metric = float(np.mean(y[self.held_idx] == counts.argmax()))

    def _batch(self, idx: np.ndarray) -> Batch:
        x = torch.from_numpy(np.ascontiguousarray(self.X[idx].T[:, :, None]))
        return Batch(x, torch.from_numpy(self.y[idx]))

    def make_batch(self, rng: np.random.Generator, batch_size: int, split: str) -> Batch:
        pool = self.train_idx if split == "train" else self.held_idx
        return self._batch(rng.choice(pool, size=batch_size, replace=batch_size > len(pool)))

    def heldout(self) -> list[Batch]:
        """Every held-out image, in a fixed order."""
        if self._heldout is None:
            chunks = np.array_split(self.held_idx, max(1, len(self.held_idx) // self.eval_batch))
            self._heldout = [self._batch(c) for c in chunks]
        return self._heldout

    def metric(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return accuracy(out, y)

    def trivial_output(self, b: Batch) -> torch.Tensor:
        """The training class prior as logits (its held-out CE is a cross-entropy, not the entropy)."""
        return torch.from_numpy(np.log(self.prior)).expand(b.size, -1)
