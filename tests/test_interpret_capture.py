"""Capture and steering through the shared probe hook (layers/probe.py) on Swin, UoE-LM and MAXIM.

Exactness is checked on bare layers (the captured hidden equals act(fc1 x); steering an MLP equals
shifting its output bias by alpha * W_out^T v; a UoME with every expert on every position steers as
its dense MLP). On the three families: shapes, token metadata, no change without steering, no
retrace for a new vector, and Mlp steering equal to the bias shift through the whole model.
"""
import numpy as np
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.interpret import capture as C
from flaxzoo.layers.experts import RoutePlan, UoME
from flaxzoo.layers.mlp import Mlp, gelu_exact
from flaxzoo.validate import InputError


def _flat(y):
    import jax

    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(y)])


def test_capture_bare_mlp_is_the_hidden_layer(tmp_path):
    mlp = Mlp(6, 10, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).standard_normal((5, 3, 6)).astype(np.float32)
    acts = C.capture(mlp, "", x, batch_size=2)  # 5 examples, last batch padded
    expected = np.asarray(gelu_exact(mlp.fc1(x))).reshape(-1, 10).T
    np.testing.assert_allclose(acts.A, expected, rtol=1e-5, atol=1e-6)
    mapped = C.capture(mlp, "", x, batch_size=2, out=tmp_path / "A.npy")  # memory-mapped to a .npy file
    assert isinstance(mapped.A, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "A.npy"), acts.A)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        C.capture(mlp, "", x, out=tmp_path / "A.npy")
    assert acts.grid == (3,) and list(acts.meta["example"][:4]) == [0, 0, 0, 1]
    assert getattr(mlp, "probe", None) is None  # removed after capture


def test_steering_bare_mlp_equals_output_bias_shift():
    mlp = Mlp(6, 10, rngs=nnx.Rngs(1))
    x = np.random.default_rng(1).standard_normal((2, 4, 6)).astype(np.float32)
    v = np.random.default_rng(2).standard_normal(10).astype(np.float32)
    steer = C.Steerer(mlp, "")
    steered = np.asarray(steer(x, v, 2.5))
    steer.close()
    shifted = mlp.fc2.bias[...] + 2.5 * v @ np.asarray(mlp.fc2.kernel[...])
    expected = np.asarray(mlp.fc1(x))
    expected = np.asarray(gelu_exact(expected)) @ np.asarray(mlp.fc2.kernel[...]) + shifted
    np.testing.assert_allclose(steered, expected, rtol=1e-5, atol=1e-5)


def test_uome_capture_zeros_unrouted_and_steers_like_its_dense_mlp():
    layer = UoME(4, 8, num_experts=2, top_k=1, rngs=nnx.Rngs(0))
    x = np.random.default_rng(3).standard_normal((2, 6, 4)).astype(np.float32)
    plan = layer.route(x)
    acts = C.capture(layer, "", x, batch_size=2)
    hidden = acts.A.T.reshape(2, 6, 2, 4)  # (G, N, expert, F/E)
    h = np.asarray(layer.expert_hidden(x, plan))
    tokens = np.asarray(plan.tokens)
    for e in range(2):
        for g in range(2):
            routed = set(tokens[e, g])
            for n in range(6):
                want = h[e, g, list(tokens[e, g]).index(n)] if n in routed else np.zeros(4)
                np.testing.assert_allclose(hidden[g, n, e], want, rtol=1e-5, atol=1e-6)
    # every expert on every position: the layer is its dense MLP, and steering adds alpha v to that hidden layer
    everything = RoutePlan.all_tokens(2, 2, 6)
    steer = C.Steerer(layer, "", forward=lambda m, x: m(x, plan=everything))
    v = np.random.default_rng(4).standard_normal(8).astype(np.float32)
    w1, b1, w2, b2 = (np.asarray(p) for p in layer.dense_params())
    expected = (np.asarray(gelu_exact(x @ w1 + b1)) + 1.5 * v) @ w2 + b2
    np.testing.assert_allclose(np.asarray(steer(x, v, 1.5)), expected, rtol=1e-4, atol=1e-5)
    steer.close()


FAMILIES = {
    "swin": (lambda: flaxzoo.create_model("swin_test_tiny", depths=(1,), num_heads=(1,), embed_dim=8, num_classes=3),
             lambda rng: rng.standard_normal((3, 64, 64, 3)).astype(np.float32), (16, 16)),
    "uoe_lm": (lambda: flaxzoo.create_model("uoe_lm_tiny", depth=1, dim=16, hidden_dim=32, num_heads=2, vocab_size=20),
               lambda rng: rng.integers(0, 20, (3, 12)), (12,)),
    "maxim": (lambda: flaxzoo.create_model("maxim_tiny", num_stages=1, depth=1, num_supervision_scales=1),
              lambda rng: rng.uniform(size=(3, 16, 16, 3)).astype(np.float32), None),
}


# Swin runs in the default suite; UoE-LM and MAXIM (tens of seconds of compiles each) in `make test-all`.
@pytest.mark.parametrize("family", [f if f == "swin" else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES])
def test_capture_and_steer_family(family):
    build, make_input, grid = FAMILIES[family]
    model = build()
    x = make_input(np.random.default_rng(0))
    path = list(C.mlp_layers(model))[-1]
    layer = C.find_layer(model, path)
    width = C.hidden_width(layer)
    acts = C.capture(model, path, x, batch_size=2)
    assert acts.A.shape == (width, 3 * acts.tokens_per_example) and np.isfinite(acts.A).all()
    if grid is not None:
        assert acts.grid == grid
    if len(acts.grid) == 2:  # image tokens know the pixel box they cover
        h, w = x.shape[1:3]
        box = acts.meta["box"]
        assert box[:, 2].max() == h and box[:, 3].max() == w and (box[:, 2] > box[:, 0]).all()
    before = _flat(model(x))
    steer = C.Steerer(model, path)
    np.testing.assert_allclose(_flat(steer(x)), before, rtol=1e-4, atol=1e-4)
    rng = np.random.default_rng(1)
    v1, v2 = (rng.standard_normal(width).astype(np.float32) for _ in range(2))
    out1, out2 = _flat(steer(x, v1, 2.0)), _flat(steer(x, v2, -1.0))
    assert steer.traces == 1, "a new vector or alpha must not retrace"
    assert np.abs(out1 - before).max() > 1e-3 and np.abs(out2 - out1).max() > 1e-3
    if isinstance(layer, Mlp):  # through the whole model: steering == shifting the output bias
        steer.close()
        bias = layer.fc2.bias[...]
        layer.fc2.bias.set_value(bias + 2.0 * v1 @ np.asarray(layer.fc2.kernel[...]))
        np.testing.assert_allclose(_flat(model(x)), out1, rtol=1e-3, atol=1e-3)
        layer.fc2.bias.set_value(bias)
    steer.close()
    np.testing.assert_array_equal(_flat(model(x)), before)  # the probe is gone: the model is as it was


def test_unknown_layer_and_bad_direction_are_clear_errors():
    mlp = Mlp(4, 8, rngs=nnx.Rngs(0))
    with pytest.raises(InputError, match="no MLP layer at 'blocks.9.mlp'"):
        C.capture(mlp, "blocks.9.mlp", np.zeros((1, 2, 4), np.float32))
    steer = C.Steerer(mlp, "")
    with pytest.raises(InputError, match=r"shape \(8,\)"):
        steer(np.zeros((1, 2, 4), np.float32), np.zeros(5), 1.0)
