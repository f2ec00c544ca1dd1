"""All weight initialization in one place: per gate block, spectral radius, biases, forget bias."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from rnnlab.spec import InitSpec

from .cells import GATES, RecurrentNet
from .errors import EngineError


def _init_block(w: torch.Tensor, how: str, init: InitSpec) -> None:
    """Initialize one (H × fan_in) gate block in place; 'default' leaves PyTorch's values."""
    if how == "default":
        return
    if how == "zeros":
        nn.init.zeros_(w)
    elif how == "normal":
        nn.init.normal_(w, 0.0, init.std)
    elif how == "uniform":
        nn.init.uniform_(w, -init.bound, init.bound)
    elif how == "xavier_uniform":
        nn.init.xavier_uniform_(w)
    elif how == "xavier_normal":
        nn.init.xavier_normal_(w)
    elif how == "kaiming":
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")  # He: N(0, 2/fan_in)
    elif how == "orthogonal":
        nn.init.orthogonal_(w)
    elif how == "identity":
        with torch.no_grad():
            nn.init.eye_(w)
            w.mul_(init.scale)
    else:
        raise ValueError(f"init: got {how!r}")


def spectral_radius(w: torch.Tensor) -> float:
    """ρ(W) = max |eigenvalue|, computed in float64."""
    return float(torch.linalg.eigvals(w.detach().double().cpu()).abs().max())


@torch.no_grad()
def init_weights(net: RecurrentNet, init: InitSpec, forget_bias: float | None = None) -> None:
    """Apply ``spec.init`` to every layer, gate block by gate block (uses the global RNG: call it
    under a seeded ``torch.random.fork_rng``)."""
    H, gates = net.hidden_size, GATES[net.cell]
    use_default_bias = init.bias == "default" or (
        init.bias is None and init.recurrent == "default" and init.input == "default"
    )
    for k in range(net.num_layers):
        p = net.layer_params(k)
        for j, gate in enumerate(gates):
            block = slice(j * H, (j + 1) * H)
            _init_block(p["w_ih"][block], init.input, init)
            w_hh = p["w_hh"][block]
            _init_block(w_hh, init.recurrent, init)
            if init.spectral_radius is not None:
                rho = spectral_radius(w_hh)
                if not rho > 0 or not math.isfinite(rho):
                    raise EngineError(
                        f"init.spectral_radius: cannot rescale the '{gate}' block of weight_hh_l{k} "
                        f"(its spectral radius is {rho}); choose another init.recurrent"
                    )
                w_hh.mul_(init.spectral_radius / rho)
        if not use_default_bias:
            p["b_ih"].zero_()
            p["b_hh"].zero_()
        if net.cell == "lstm" and forget_bias is not None:
            f = slice(H, 2 * H)  # the total b_ih + b_hh of the forget block equals forget_bias
            p["b_ih"][f] = forget_bias
            p["b_hh"][f] = 0.0
