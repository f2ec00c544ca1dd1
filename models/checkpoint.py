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


def unpack(data: bytes, spec_hash: str, device: torch.device) -> dict:
    """Read a checkpoint made by ``pack`` for the same spec, or raise EngineError."""
    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as e:  # corrupt bytes surface as many exception types
        raise EngineError(f"resume: the checkpoint could not be read ({type(e).__name__}: {e})") from None
    if state.get("format") != FORMAT:
        raise EngineError(f"resume: checkpoint format {state.get('format')!r}; this engine reads {FORMAT}")
    if state["spec_hash"] != spec_hash:
        raise EngineError("resume: the checkpoint was made for a different spec (spec_hash differs)")
    return state
