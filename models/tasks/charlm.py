"""Character-level language modelling on a plain-text file (bundled: a selection of Shakespeare's sonnets)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from rnnlab.spec import MAX_CHARLM_VOCAB

from ..errors import EngineError
from .base import LN2, Batch, Task, entropy_nats, read_data_file

BUNDLED = "sonnets.txt"
HELDOUT_FRACTION = 0.1   # the last 10% of the text is held out
HELDOUT_WINDOWS = 64


@lru_cache(maxsize=4)
def read_text(path: str | None) -> str:
    """The bundled text (path None) or a user's UTF-8 text file of at most MAX_DATA_FILE_BYTES (checked
    before it is read, models.tasks.base.read_data_file)."""
    if path is None:
        return resources.files("models.data").joinpath(BUNDLED).read_text(encoding="utf-8")
    # universal newlines, as Path.read_text reads them
    return read_data_file(path).decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


class CharLMTask(Task):
    """Predict the next character at every step; input and output are one-hot over the text's
    characters. Metric: bits per character (CE / ln 2). Baseline: the unigram entropy of the
    training text (first 90%)."""

    name = "charlm"
    output_mode = "every"
    loss_name = "cross_entropy"
    metric_name = "bpc"
    higher_is_better = False
    heldout_size = HELDOUT_WINDOWS

    def __init__(self, seed: int, path: str | None, seq_len: int):
        super().__init__(seed)
        self.variant = "bundled" if path is None else Path(path).name
        self.seq_len = seq_len
        text = read_text(path)
        vocab = set(text)
        if len(vocab) > MAX_CHARLM_VOCAB:   # before anything as wide as the vocabulary is built
            raise EngineError(f"task.path: {path} has {len(vocab):,} distinct characters; a charlm text may have "
                              f"at most {MAX_CHARLM_VOCAB:,} (rnnlab.spec.MAX_CHARLM_VOCAB), the width of its "
                              f"one-hot inputs and outputs")
        self.vocab = sorted(vocab)
        self.input_size = self.output_size = len(self.vocab)
        lookup = {c: i for i, c in enumerate(self.vocab)}
        codes = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
        n_train = int(len(codes) * (1 - HELDOUT_FRACTION))
        self.train, self.held = codes[:n_train], codes[n_train:]
        for part, n in (("training", len(self.train)), ("held-out", len(self.held))):
            if n < seq_len + 2:
                raise EngineError(f"task.seq_len: got {seq_len}; the {part} part of the text has only "
                                  f"{n} characters — use a shorter seq_len or a longer text")
        counts = np.bincount(self.train, minlength=len(self.vocab)).astype(np.float64)
        self.unigram = counts / counts.sum()
        h = entropy_nats(counts)
        self.baseline_loss, self.baseline_metric = h, h / LN2

    def make_batch(self, rng: np.random.Generator, batch_size: int, split: str) -> Batch:
        codes = self.train if split == "train" else self.held
        starts = rng.integers(0, len(codes) - self.seq_len, batch_size)
        idx = codes[starts[None, :] + np.arange(self.seq_len + 1)[:, None]]   # (T+1, B)
        x = np.zeros((self.seq_len, batch_size, self.input_size), dtype=np.float32)
        np.put_along_axis(x, idx[:-1, :, None], 1.0, axis=2)
        return Batch(torch.from_numpy(x), torch.from_numpy(idx[1:].copy()))

    def metric(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(out, y).double() / LN2

    def trivial_output(self, b: Batch) -> torch.Tensor:
        """The training text's unigram distribution as logits at every step (log 0 = −inf for a
        character that only the held-out part has, which makes the held-out baseline NaN)."""
        with np.errstate(divide="ignore"):
            logits = torch.from_numpy(np.log(self.unigram))
        return logits.expand(b.y.shape[0], b.size, -1)
