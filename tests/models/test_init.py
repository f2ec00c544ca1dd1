"""Initialization is applied per gate block; spectral radius, forget bias and the bias rule are exact."""

import numpy as np
import pytest
import torch

from models import EngineError
from models.build import build_model
from models.tasks import make_task

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _net(tiny, **kw):
    spec = tiny(**kw)
    return build_model(spec, make_task(spec.task, spec.seed)).requires_grad_(False)


def _blocks(w, n):
    H = w.shape[0] // n
    return [w[j * H:(j + 1) * H].detach().double().numpy() for j in range(n)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_orthogonal_per_block(tiny, cell):
    net = _net(tiny, cell=cell, hidden_size=6, num_layers=2, init="orthogonal")
    for k in range(2):
        for blk in _blocks(net.layer_params(k)["w_hh"], GATES[cell]):
            np.testing.assert_allclose(blk.T @ blk, np.eye(6), atol=1e-5)
    if cell != "rnn":  # an orthogonal_ on the whole stack would not make every block orthogonal
        stack = net.layer_params(0)["w_hh"].detach().double().numpy()
        assert not np.allclose(stack.T @ stack, np.eye(6), atol=1e-3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_identity_blocks_with_scale(tiny, cell):
    net = _net(tiny, cell=cell, hidden_size=5, init={"recurrent": "identity", "input": "zeros", "scale": 0.7})
    for blk in _blocks(net.layer_params(0)["w_hh"], GATES[cell]):
        np.testing.assert_allclose(blk, 0.7 * np.eye(5), rtol=1e-7, atol=0)
    assert float(net.layer_params(0)["w_ih"].detach().abs().sum()) == 0.0


@pytest.mark.parametrize("cell,how", [("rnn", "normal"), ("lstm", "xavier_uniform"), ("gru", "kaiming"),
                                      ("lstm", "default")])
def test_spectral_radius_is_exact_per_block(tiny, cell, how):
    net = _net(tiny, cell=cell, hidden_size=8, num_layers=2,
               init={"recurrent": how, "input": "default", "spectral_radius": 1.3})
    for k in range(2):
        for blk in _blocks(net.layer_params(k)["w_hh"], GATES[cell]):
            assert np.abs(np.linalg.eigvals(blk)).max() == pytest.approx(1.3, rel=1e-5)


def test_spectral_radius_of_a_nilpotent_block_is_an_engine_error(tiny):
    from models.init import init_weights
    from rnnlab.spec import InitSpec

    net = _net(tiny, hidden_size=4)
    with torch.no_grad():
        net.rnn.weight_hh_l0.copy_(torch.triu(torch.ones(4, 4), diagonal=1))  # nilpotent: ρ = 0
    with pytest.raises(EngineError, match="spectral_radius"):
        init_weights(net, InitSpec(spectral_radius=1.0))


@pytest.mark.parametrize("fb", [1.0, -2.5])
def test_forget_bias_is_the_total_of_both_biases(tiny, fb):
    net = _net(tiny, cell="lstm", hidden_size=4, num_layers=2, init={"forget_bias": fb})
    for k in range(2):
        p = net.layer_params(k)
        total = (p["b_ih"] + p["b_hh"]).detach().numpy()
        np.testing.assert_allclose(total[4:8], fb)
        assert not np.allclose(total[:4], fb)   # other gates keep PyTorch's default biases


def test_bias_rule(tiny):
    default = _net(tiny, cell="gru")
    assert float(default.rnn.bias_hh_l0.abs().sum()) > 0      # both inits default → PyTorch's biases
    ortho = _net(tiny, cell="gru", init="orthogonal")
    assert float(ortho.rnn.bias_hh_l0.abs().sum()) == 0 and float(ortho.rnn.bias_ih_l0.abs().sum()) == 0
    kept = _net(tiny, cell="gru", init={"recurrent": "orthogonal", "bias": "default"})
    assert float(kept.rnn.bias_ih_l0.abs().sum()) > 0


def test_init_scales(tiny):
    """normal(std), uniform(bound), He and Xavier have their documented spread on a large block."""
    H = 256
    w = lambda how, **kw: _net(tiny, hidden_size=H, init={"recurrent": how, **kw}).rnn.weight_hh_l0.detach().numpy()  # noqa: E731
    assert w("normal", std=0.05).std() == pytest.approx(0.05, rel=0.02)
    u = w("uniform", bound=0.3)
    assert u.max() <= 0.3 and u.min() >= -0.3 and u.std() == pytest.approx(0.3 / np.sqrt(3), rel=0.02)
    assert w("kaiming").std() == pytest.approx(np.sqrt(2 / H), rel=0.02)
    assert w("xavier_normal").std() == pytest.approx(np.sqrt(2 / (2 * H)), rel=0.02)
    assert np.abs(w("xavier_uniform")).max() <= np.sqrt(6 / (2 * H)) + 1e-7
    assert float(np.abs(w("zeros")).sum()) == 0.0


def test_init_is_seeded_and_leaves_the_global_rng_alone(tiny):
    state = torch.get_rng_state()
    a = _net(tiny, init="xavier_normal", seed=3).rnn.weight_hh_l0
    b = _net(tiny, init="xavier_normal", seed=3).rnn.weight_hh_l0
    c = _net(tiny, init="xavier_normal", seed=4).rnn.weight_hh_l0
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)
