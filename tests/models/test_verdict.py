"""``diagnose`` on hand-made records, the probe cadence, and the engine's import lane."""

import ast
import math
import subprocess
import sys
from pathlib import Path


from models import diagnose, train
from rnnlab.records import EpochRecord, LayerStat


def _layer(grad_h, log_ratio, horizon, layer=0):
    return LayerStat(layer=layer, rho=0.5, sigma_max=1.0, gamma_sigma_max=1.0, gate_spectra={},
                     saturated_frac=0.0, dead_frac=None, gate_mean={}, gate_saturated={},
                     grad_h=grad_h, grad_c=None, log_ratio=log_ratio, decay_per_step=-0.5,
                     horizon=horizon, steps_in_past=1.0)


def _record(layers, gmax=1.0, nonfinite=0, probed=True):
    return EpochRecord(epoch=3, steps=10, train_loss=0.1, val_loss=0.1, val_metric=0.5, grad_norm_mean=gmax,
                       grad_norm_max=gmax, clip_fraction=0.0, nonfinite_steps=nonfinite, train_seconds=1.0,
                       diag_seconds=0.1, probed=probed, layers=layers if probed else [])


def test_vanishing():
    line = diagnose(_record([_layer([1e-9] + [1.0] * 99, -9.0, 14.0)]), None)
    assert line == "gradients vanish: ‖g_1‖/‖g_T‖ = 1e-09, horizon 14 steps"


def test_vanishing_names_the_worst_layer():
    layers = [_layer([1.0] * 10, 0.0, 9.0, 0), _layer([1e-5] + [1.0] * 9, -5.0, 3.0, 1)]
    assert diagnose(_record(layers), None) == "gradients vanish (layer 1): ‖g_1‖/‖g_T‖ = 1e-05, horizon 3 steps"


def test_healthy_whole_sequence():
    line = diagnose(_record([_layer([0.3] * 99 + [1.0], math.log10(0.3), 99.0)]), None)
    assert line == "healthy: ‖g_1‖/‖g_T‖ = 0.3, horizon 99 steps (the whole sequence)"


def test_exploding_by_ratio_norm_and_nonfinite():
    assert diagnose(_record([_layer([1e5] + [1.0] * 9, 5.0, 9.0)]), None).startswith("gradients explode: ‖g_1‖/‖g_T‖ = 1e+05")
    assert diagnose(_record([_layer([1.0] * 10, 0.0, 9.0)], gmax=5e3), None).startswith("gradients explode")
    assert diagnose(_record([], gmax=math.inf, nonfinite=1), None).startswith("gradients explode: non-finite")


def test_non_finite_profile_is_exploding():
    line = diagnose(_record([_layer([math.nan] * 4 + [1.0], math.nan, math.nan)]), None)
    assert line == "gradients explode: ‖∂L/∂h_t‖ is non-finite in layer 0 at epoch 3"


def test_zero_and_unprobed():
    assert diagnose(_record([_layer([0.0] * 5, math.nan, math.nan)]), None).startswith("gradients are zero")
    assert diagnose(_record([], probed=False), None).startswith("not probed this epoch")


def test_probe_cadence(tiny):
    recs = []
    train(tiny(epochs=5, steps_per_epoch=1, probe={"every": 2, "batch_size": 3}), on_epoch=recs.append)
    assert [r.probed for r in recs] == [True, False, True, False, True, True]
    assert all(r.layers == [] for r in recs if not r.probed)
    assert all(sum(p.hist) + p.hist_zeros > 0 for r in recs for p in r.params)  # histograms every epoch


FORBIDDEN = ("db", "worker", "dashboard", "celery", "sqlalchemy", "streamlit")


def test_engine_imports_stay_in_its_lane():
    root = Path(__file__).resolve().parents[2] / "models"
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN, f"{f}: imports {n}"


def test_import_and_describe_do_not_touch_cuda():
    code = ("import torch, models; from rnnlab.spec import parse_spec; "
            "models.describe(parse_spec({'cell': 'lstm', 'hidden_size': 4})); "
            "print(torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"
