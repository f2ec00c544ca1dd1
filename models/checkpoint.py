"""Checkpoints as bytes: model, optimizer, RNG states and the position in the data (the epoch)."""

from __future__ import annotations

import io

import torch

from .errors import EngineError

FORMAT = 1


def pack(*, spec_hash: str, epoch: int, model: dict, optimizer: dict) -> bytes:
    """Serialize the state after ``epoch``. Data is a pure function of (seed, epoch, step), so the
    epoch is the whole data position; the global torch RNG state is kept for completeness."""
    buf = io.BytesIO()
    torch.save({
        "format": FORMAT, "spec_hash": spec_hash, "epoch": epoch,
        "model": model, "optimizer": optimizer,
        "torch_rng": torch.get_rng_state(),
    }, buf)
    return buf.getvalue()


def unpack(data: bytes, spec_hash: str, device: torch.device | None = None) -> dict:
    """Read a checkpoint made by ``pack`` for the same spec, or raise EngineError. Its tensors are on the
    CPU (``device`` is not used: load_state_dict moves them; a GPU checkpoint resumes on a CPU worker)."""
    try:
        # read onto the CPU whatever the device: load_state_dict then copies the weights and the optimizer's
        # moments to where the parameters are, and keeps Adam's step counter on the CPU as in a fresh run (read
        # onto a GPU, the counter stayed there, and Adam's step read it back with .item(): host syncs per step)
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt bytes surface as many exception types
        raise EngineError(f"resume: the checkpoint could not be read ({type(e).__name__}: {e})") from None
    if state.get("format") != FORMAT:
        raise EngineError(f"resume: checkpoint format {state.get('format')!r}; this engine reads {FORMAT}")
    if state["spec_hash"] != spec_hash:
        raise EngineError("resume: the checkpoint was made for a different spec (spec_hash differs)")
    return state
