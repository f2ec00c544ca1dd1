"""Ready-made sweeps (SweepSpecs) for the classic vanishing/exploding-gradient comparisons,
sized to finish on a laptop CPU in minutes."""

from __future__ import annotations

from rnnlab.spec import SweepSpec

_ADD = {"name": "adding", "variant": "a16", "seq_len": 100}
_TRAIN = {"hidden_size": 64, "batch_size": 64, "epochs": 15, "steps_per_epoch": 50,
          "optimizer": {"name": "adam", "lr": 0.001}}

PRESETS: dict[str, tuple[str, SweepSpec]] = {
    "Cells on the adding problem": (
        "tanh-RNN vs LSTM vs GRU on the adding problem (A16 variant, T = 100), 3 seeds each.",
        SweepSpec(name="cells-adding", base={**_TRAIN, "task": _ADD, "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"cell": ["rnn", "lstm", "gru"]}, seeds=[0, 1, 2])),
    "Activations: sigmoid vs tanh vs ReLU": (
        "Vanilla RNN with γ = 1/4 (sigmoid) vs γ = 1 (tanh, ReLU), orthogonal W_hh, T = 50.",
        SweepSpec(name="activations", base={**_TRAIN, "cell": "rnn", "task": {**_ADD, "seq_len": 50},
                                            "init": {"recurrent": "orthogonal", "input": "xavier_uniform"},
                                            "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"activation": ["sigmoid", "tanh", "relu"]}, seeds=[0, 1])),
    "Initializations: zero vs Xavier vs He vs orthogonal vs identity": (
        "tanh-RNN on adding T = 50 with each init for both W_hh and W_ih (zero init keeps h ≡ 0).",
        SweepSpec(name="inits", base={**_TRAIN, "cell": "rnn", "task": {**_ADD, "seq_len": 50},
                                      "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"init": ["zeros", "xavier_uniform", "kaiming", "orthogonal", "identity"]}, seeds=[0, 1])),
    "Exploding init: clipping off vs on": (
        "tanh-RNN with W_hh rescaled to spectral radius 3 (γ·σ_max > 1), SGD with momentum, "
        "without clipping and with norm clipping at 1 [P13].",
        SweepSpec(name="explode-clip", base={**_TRAIN, "cell": "rnn", "task": {**_ADD, "seq_len": 50},
                                             "init": {"recurrent": "orthogonal", "input": "xavier_uniform",
                                                      "spectral_radius": 3.0},
                                             "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}},
                  vary={"clip": ["none", {"mode": "norm", "max_norm": 1.0}]}, seeds=[0, 1, 2])),
    "Depth 1–4": (
        "Stacked tanh-RNNs of 1 to 4 layers on adding T = 50.",
        SweepSpec(name="depth", base={**_TRAIN, "cell": "rnn", "task": {**_ADD, "seq_len": 50},
                                      "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"num_layers": [1, 2, 3, 4]}, seeds=[0, 1])),
    "Sequence length 25–400": (
        "tanh-RNN vs LSTM as T grows from 25 to 400 on the adding problem.",
        SweepSpec(name="seq-len", base={**_TRAIN, "task": _ADD, "epochs": 10,
                                        "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"task.seq_len": [25, 50, 100, 200, 400], "cell": ["rnn", "lstm"]}, seeds=[0])),
    "Phase diagram: spectral radius × T": (
        "tanh-RNN, orthogonal W_hh rescaled to spectral radius 0.5–2, on adding with T = 10–100, 2 seeds: "
        "open it in the Explorer's phase diagram (ρ < 1 vanishes with T, ρ > 1 explodes) [P13].",
        SweepSpec(name="phase-radius-T", base={**_TRAIN, "hidden_size": 32, "epochs": 5, "steps_per_epoch": 30,
                                               "cell": "rnn", "activation": "tanh", "task": _ADD,
                                               "init": {"recurrent": "orthogonal", "input": "xavier_uniform"}},
                  vary={"init.spectral_radius": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0], "task.seq_len": [10, 25, 50, 100]},
                  seeds=[0, 1])),
}
