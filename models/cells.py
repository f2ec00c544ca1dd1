"""The network: a recurrent stack (fused nn.RNN/LSTM/GRU, or an unrolled vanilla cell) and a linear head."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# gate blocks of weight_hh, in PyTorch's stacking order
GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
CANDIDATE = {"rnn": "h", "lstm": "g", "gru": "n"}   # the block reported as the layer's rho/sigma_max
FUSED_ACTIVATIONS = ("tanh", "relu")                # the only ones nn.RNN has
PRELU_INIT = 0.25                                   # as torch.nn.PReLU


def activate(z: torch.Tensor, act: str, slope: float = 0.01, a: torch.Tensor | None = None) -> torch.Tensor:
    """φ(z) of a vanilla cell."""
    if act == "tanh":
        return torch.tanh(z)
    if act == "sigmoid":
        return torch.sigmoid(z)
    if act == "relu":
        return torch.relu(z)
    if act == "leaky_relu":
        return F.leaky_relu(z, slope)
    if act == "prelu":
        return F.prelu(z, a)
    raise ValueError(f"activation: got {act!r}; allowed: tanh, sigmoid, relu, leaky_relu, prelu")


def gamma(act: str, slope: float = 0.01, a: float | None = None) -> float:
    """γ = sup φ′ of a vanilla cell's activation (the factor in ‖J‖ ≤ γ‖W‖)."""
    return {
        "tanh": 1.0, "sigmoid": 0.25, "relu": 1.0,
        "leaky_relu": max(1.0, slope),
        "prelu": max(1.0, abs(a if a is not None else PRELU_INIT)),
    }[act]


class UnrolledRNN(nn.Module):
    """A multi-layer vanilla RNN with any activation, run step by step; parameter names match nn.RNN
    (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}; prelu_l{k} for PReLU's slope)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, activation: str, slope: float):
        super().__init__()
        self.hidden_size, self.num_layers, self.activation, self.slope = hidden_size, num_layers, activation, slope
        for k in range(num_layers):
            fan_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(hidden_size, fan_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(hidden_size)))
            if activation == "prelu":
                self.register_parameter(f"prelu_l{k}", nn.Parameter(torch.full((1,), PRELU_INIT)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's RNN default: every weight and bias U(−1/√H, 1/√H)."""
        bound = 1 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if not name.startswith("prelu"):
                nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (T, B, input) → outputs (T, B, H) of the top layer, final states (layers, B, H)."""
        finals = []
        for k in range(self.num_layers):
            w_hh_t = getattr(self, f"weight_hh_l{k}").t()
            a = getattr(self, f"prelu_l{k}", None)
            # the input projection of every step in one matmul; only h @ W_hhᵀ stays in the loop
            xp = F.linear(x, getattr(self, f"weight_ih_l{k}"),
                          getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}"))
            h = x.new_zeros(x.shape[1], self.hidden_size)
            hs = []
            for xp_t in xp.unbind(0):  # one UnbindBackward node, not T full-size SelectBackward copies
                h = activate(torch.addmm(xp_t, h, w_hh_t), self.activation, self.slope, a)
                hs.append(h)
            x = torch.stack(hs)
            finals.append(h)
        return x, torch.stack(finals)


class RecurrentNet(nn.Module):
    """A recurrent stack ``rnn`` and a linear ``head`` (at the last step or at every step)."""

    def __init__(self, cell: str, activation: str, slope: float, input_size: int, hidden_size: int,
                 num_layers: int, output_size: int, output_mode: str):
        super().__init__()
        self.cell, self.activation, self.slope = cell, activation, slope
        self.hidden_size, self.num_layers, self.output_mode = hidden_size, num_layers, output_mode
        if cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden_size, num_layers)
        elif cell == "gru":
            self.rnn = nn.GRU(input_size, hidden_size, num_layers)
        elif cell == "rnn" and activation in FUSED_ACTIVATIONS:
            self.rnn = nn.RNN(input_size, hidden_size, num_layers, nonlinearity=activation)
        elif cell == "rnn":
            self.rnn = UnrolledRNN(input_size, hidden_size, num_layers, activation, slope)
        else:
            raise ValueError(f"cell: got {cell!r}; allowed: rnn, lstm, gru")
        self.head = nn.Linear(hidden_size, output_size)

    @property
    def fused(self) -> bool:
        return not isinstance(self.rnn, UnrolledRNN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, B, input) → (B, out) for 'last' tasks, (T, B, out) for 'every' tasks."""
        out, _ = self.rnn(x)
        return self.head(out[-1] if self.output_mode == "last" else out)

    def layer_params(self, k: int) -> dict[str, torch.Tensor | None]:
        """Layer k's weights under their PyTorch names (w_ih, w_hh, b_ih, b_hh, prelu)."""
        return {
            "w_ih": getattr(self.rnn, f"weight_ih_l{k}"), "w_hh": getattr(self.rnn, f"weight_hh_l{k}"),
            "b_ih": getattr(self.rnn, f"bias_ih_l{k}"), "b_hh": getattr(self.rnn, f"bias_hh_l{k}"),
            "prelu": getattr(self.rnn, f"prelu_l{k}", None),
        }

    def named_params(self) -> list[tuple[str, nn.Parameter]]:
        """named_parameters() with the recurrent stack's names unprefixed: weight_hh_l0, head.weight."""
        return [(n.removeprefix("rnn."), p) for n, p in self.named_parameters()]

    def gamma(self) -> float | None:
        """γ = sup φ′ for a vanilla cell (PReLU: the largest |a| over layers); None for gated cells."""
        if self.cell != "rnn":
            return None
        a = None
        if self.activation == "prelu":
            a = max(abs(float(self.layer_params(k)["prelu"].detach())) for k in range(self.num_layers))
        return gamma(self.activation, self.slope, a)
