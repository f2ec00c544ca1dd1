"""The engine's one door to torch's private multi-tensor (``torch._foreach_*``) kernels.

They do one kernel launch for a whole list of tensors, which keeps the per-step statistics free
on a GPU, but they are private: their names or signatures may change in any torch release. Every
call in the engine goes through here. Each private function is tried once on small tensors and
checked against the public per-tensor equivalent; if it is missing, raises, or disagrees, the
public fallback (a Python loop over ``torch.linalg.vector_norm``, ``torch.sub``, ``Tensor.mul_``) is
used from then on. ``use_private(False)`` forces the fallback (tests and benchmarks).
"""

from __future__ import annotations

import math

import torch

_private: bool | None = None   # None: not yet checked


def _check_private() -> bool:
    try:
        a = [torch.tensor([3.0, 4.0]), torch.tensor([[1.0, -2.0], [2.0, 0.0]])]
        b = [torch.tensor([1.0, 1.0]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])]
        norms = torch._foreach_norm(a)
        inf = torch._foreach_norm(a, math.inf)
        diff = torch._foreach_sub(a, b)
        prod = torch._foreach_mul([t.clone() for t in a], torch.tensor(0.5))
        ok = (torch.allclose(torch.stack(norms), torch.tensor([5.0, 3.0]))
              and torch.allclose(torch.stack(inf), torch.tensor([4.0, 2.0]))
              and all(torch.equal(d, x - y) for d, x, y in zip(diff, a, b))
              and all(torch.equal(p, x * 0.5) for p, x in zip(prod, a)))
        mul_ = [t.clone() for t in a]
        torch._foreach_mul_(mul_, torch.tensor(0.5))
        return bool(ok and all(torch.equal(p, x * 0.5) for p, x in zip(mul_, a)))
    except Exception:  # missing (AttributeError) or a changed signature (TypeError, RuntimeError)
        return False


def use_private(flag: bool | None = None) -> bool:
    """Whether the private kernels are in use; ``flag`` sets it (True only if they pass the check;
    None: re-check)."""
    global _private
    _private = _check_private() if flag is None or flag else False
    return _private


def _ok() -> bool:
    if _private is None:
        use_private()
    return bool(_private)


def norms(tensors: list[torch.Tensor], ord: float = 2.0) -> torch.Tensor:
    """The ``ord``-norm of every tensor, stacked into one 1-D tensor (on the tensors' device)."""
    if not tensors:
        return torch.zeros(0)
    if _ok():
        return torch.stack(torch._foreach_norm(tensors, ord))
    return torch.stack([torch.linalg.vector_norm(t, ord) for t in tensors])


def sub(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    """[x − y for x, y in zip(a, b)] as new tensors."""
    if _ok():
        return list(torch._foreach_sub(a, b))
    return [torch.sub(x, y) for x, y in zip(a, b)]


def mul_(tensors: list[torch.Tensor], factor: torch.Tensor) -> None:
    """Multiply every tensor in place by the 0-d tensor ``factor`` (no host sync)."""
    if not tensors:
        return
    if _ok():
        torch._foreach_mul_(tensors, factor)
        return
    for t in tensors:
        t.mul_(factor)


def clip_by_total_norm_(grads: list[torch.Tensor], max_norm: float, total: torch.Tensor) -> None:
    """Scale ``grads`` in place by min(1, max_norm / (total + 1e-6)): what
    ``torch.nn.utils.clip_grad_norm_`` does, given the total norm the engine has already computed
    (so the per-parameter norms are not computed a second time)."""
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    mul_(grads, coef)
