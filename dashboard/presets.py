"""Ready-made sweeps (SweepSpecs) for the New experiment page.

The presets that test a claim are the built-in studies' CPU-scale sweeps (studies/, docs/studies.md):
their text is the study's claim, which the study's own runs reproduce on every calibrated seed. The
Studies page (or `rnnlab study run NAME`) submits them tagged so that their verdict is computed; a
preset loaded here and submitted from this form trains the same runs without that tag. The other
presets are sweeps to explore, and their text says only what they vary.
"""

from __future__ import annotations

import studies
from rnnlab.spec import SweepSpec

_ADD = {"name": "adding", "variant": "a16", "seq_len": 100}
_TRAIN = {"hidden_size": 64, "batch_size": 64, "epochs": 15, "steps_per_epoch": 50,
          "optimizer": {"name": "adam", "lr": 0.001}}


def _study(name: str) -> tuple[str, SweepSpec]:
    st = studies.get(name)
    sc = st.scale("cpu")
    return (f"Study {st.name} v{st.version} ({st.n_runs('cpu')} runs, {sc.budget}): {st.claim} Source: {st.source}. "
            f"Run it from the Studies page to get its verdict; submitted from here the runs are not tagged as "
            f"the study's.", st.sweep("cpu"))


PRESETS: dict[str, tuple[str, SweepSpec]] = {
    "Cells on the adding problem": _study("adding"),
    "Activations: sigmoid vs tanh vs ReLU": _study("activations"),
    "Initializations of W_hh: zero vs Xavier vs He vs orthogonal vs identity": _study("recurrent-init"),
    "Exploding init: clipping off vs on": _study("exploding"),
    "IRNN: ReLU with W_hh = I against tanh": _study("irnn"),
    "Copy memory and its memoryless baseline": _study("copy"),
    "Temporal order: the gated cells against the tanh RNN": _study("temporal-order"),
    "Sequence length: horizon and success against T": _study("seq-len"),
    "Depth 1–4, layer by layer (at initialization)": _study("depth"),
    "Depth 1–4": (
        "Stacked tanh-RNNs of 1 to 4 layers on adding T = 50, 2 seeds: compare the per-layer gradient profiles "
        "(no claim is tested here; the depth study above tests one).",
        SweepSpec(name="depth", base={**_TRAIN, "cell": "rnn", "task": {**_ADD, "seq_len": 50},
                                      "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"num_layers": [1, 2, 3, 4]}, seeds=[0, 1])),
    "Sequence length 25–400": (
        "tanh-RNN vs LSTM as T grows from 25 to 400 on the adding problem, one seed, 500 steps: a first look "
        "at the horizon against T (no claim is tested here; the sequence-length study above tests one).",
        SweepSpec(name="seq-len", base={**_TRAIN, "task": _ADD, "epochs": 10,
                                        "clip": {"mode": "norm", "max_norm": 1.0}},
                  vary={"task.seq_len": [25, 50, 100, 200, 400], "cell": ["rnn", "lstm"]}, seeds=[0])),
    "Phase diagram: spectral radius × T": (
        "tanh-RNN, orthogonal W_hh rescaled to spectral radius 0.5–2, on adding with T = 10–100, 2 seeds, no "
        "clipping: open it in the Explorer's phase diagram to see where the gradient after training (log10 "
        "‖g_1‖/‖g_T‖ at each run's last probe) shrinks or grows with T; the x axis is the spectral radius set "
        "at init, the ρ outcome the one measured at the last probe. [P13 §2.1] predicts the picture before "
        "training (no claim is tested).",
        SweepSpec(name="phase-radius-T", base={**_TRAIN, "hidden_size": 32, "epochs": 5, "steps_per_epoch": 30,
                                               "cell": "rnn", "activation": "tanh", "task": _ADD,
                                               "init": {"recurrent": "orthogonal", "input": "xavier_uniform"}},
                  vary={"init.spectral_radius": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0], "task.seq_len": [10, 25, 50, 100]},
                  seeds=[0, 1])),
}
