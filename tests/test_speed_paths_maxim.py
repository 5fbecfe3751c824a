"""MAXIM's fast paths against the code they replaced: linear-time bilinear resize, token mixing without
transposes, split/concatenated Dense layers without copies; forward and three SGD steps of a small model.

The goldens (tests/test_maxim_golden.py) run the fast paths against the official outputs; here each is held
against its old formulation, and the whole model with all of them against the model without any."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flaxzoo.layers.gating as gating
import flaxzoo.models.maxim_blocks as maxim_blocks
from flaxzoo.layers.linear import Linear, dense_concat, dense_split
from flaxzoo.layers.mlp import gelu_tanh
from flaxzoo.layers.resize import resize_bilinear
from flaxzoo.layers.window import window_partition, window_unpartition
from flaxzoo.models.maxim import MAXIM
from flaxzoo.train.step import init_train_state, make_train_step
from flaxzoo.train.tasks import get_loss_fn


def _jax_resize(x, height, width):
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), method="bilinear")


def _old_mix_tokens(x, dense, axis):
    return jnp.swapaxes(dense(jnp.swapaxes(x, axis, -1)), axis, -1)


def _block_images(x, patch):
    """(N, H, W, C) -> (N, gh*gw, fh*fw, C): the layout the gMLP layers used before `tokens_first`."""
    n, _, _, c = x.shape
    return window_partition(x, tuple(patch)).reshape(n, -1, patch[0] * patch[1], c)


def _unblock_images(x, patch, height, width):
    return window_unpartition(x.reshape(-1, x.shape[-2], x.shape[-1]), tuple(patch), height, width)


def _old_gmlp_layer(self, x):
    """GmlpLayer as it was: cut into (N, grid, block, C), mix along axis -3 (grid) or -2 (block)."""
    _, h, w, _ = x.shape
    patch = gating.grid_patch(h, w, self.size) if self.mode == "grid" else self.size
    x = _block_images(x, patch)
    u, v = (gelu_tanh(half) for half in _old_split(self.in_project, self.norm(x)))
    v = _old_mix_tokens(self.gating.norm(v), self.gating.token_mix, -3 if self.mode == "grid" else -2)
    y = self.dropout(self.out_project(u * (v + 1.0)))
    return _unblock_images(x + y, patch, h, w)


def _old_gating_weights(self, x):
    """SpatialGatingWeights as it was (same layout as `_old_gmlp_layer`)."""
    _, h, w, _ = x.shape
    u, v = (gelu_tanh(half) for half in _old_split(self.in_project, self.norm(x)))
    patch = gating.grid_patch(h, w, self.grid_size)
    u = _unblock_images(_old_mix_tokens(_block_images(u, patch), self.grid_mix, -3), patch, h, w)
    v = _unblock_images(_old_mix_tokens(_block_images(v, self.block_size), self.block_mix, -2),
                              self.block_size, h, w)
    return self.dropout(_old_concat(self.out_project, [u, v]))


def _old_split(dense, x, parts=2):
    return jnp.split(dense(x), parts, axis=-1)


def _old_concat(dense, xs):
    return dense(jnp.concatenate(xs, axis=-1))


@pytest.mark.parametrize("size, target", [
    ((16, 24), (4, 6)), ((32, 32), (4, 4)),  # shrink by 4, 8 (antialiased), non-square
    ((4, 6), (16, 24)), ((8, 8), (16, 16)),  # grow by 4, 2
    ((8, 12), (16, 6)), ((10, 10), (20, 5)),  # one axis each way; a side of 10 shrunk by 2
    ((12, 12), (4, 4)), ((6, 9), (9, 6)),     # odd or non-integer factors: jax itself
])
def test_resize_equals_jax_image_resize(size, target):
    x = jax.random.normal(jax.random.key(0), (2, *size, 3))
    np.testing.assert_allclose(np.asarray(resize_bilinear(x, *target)), np.asarray(_jax_resize(x, *target)),
                               atol=1e-6, rtol=0)


def test_resize_dtypes_follow_jax_image_resize():
    x = jax.random.normal(jax.random.key(1), (1, 16, 16, 4))
    for dtype in (jnp.bfloat16, jnp.float16):
        got, want = resize_bilinear(x.astype(dtype), 4, 4), _jax_resize(x.astype(dtype), 4, 4)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), atol=2e-2)
    ints = jnp.arange(64, dtype=jnp.int32).reshape(1, 8, 8, 1)
    got, want = resize_bilinear(ints, 16, 4), _jax_resize(ints, 16, 4)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_resize_gradient_equals_jax_image_resize():
    x = jax.random.normal(jax.random.key(2), (1, 8, 8, 2))
    w = jax.random.normal(jax.random.key(3), (1, 4, 16, 2))
    grads = [jax.grad(lambda x, f=f: (f(x, 4, 16) * w).sum())(x) for f in (resize_bilinear, _jax_resize)]
    np.testing.assert_allclose(np.asarray(grads[0]), np.asarray(grads[1]), atol=1e-6)


@pytest.mark.parametrize("axis", [-2, -3])
def test_mix_tokens_equals_dense_between_swaps(axis):
    x = jax.random.normal(jax.random.key(4), (2, 6, 4, 3))
    dense = Linear(x.shape[axis], x.shape[axis], rngs=nnx.Rngs(0))
    dense.bias[...] = jax.random.normal(jax.random.key(5), dense.bias.shape)
    np.testing.assert_allclose(np.asarray(gating.mix_tokens(x, dense, axis)),
                               np.asarray(_old_mix_tokens(x, dense, axis)), atol=1e-6)


@pytest.mark.parametrize("mode, patch", [("block", (2, 3)), ("grid", (3, 2))])
def test_tokens_first_orders_tokens_as_block_images(mode, patch):
    x = jax.random.normal(jax.random.key(10), (2, 6, 12, 3))  # non-square, 2 images
    t = gating.tokens_first(x, patch, mode)
    blocked = np.asarray(_block_images(x, patch))  # (N, grid cells, patch pixels, C)
    n, g, p, c = blocked.shape
    want = blocked.transpose(2, 0, 1, 3).reshape(p, n * g, c) if mode == "block" else \
        blocked.transpose(1, 0, 2, 3).reshape(g, n * p, c)
    np.testing.assert_array_equal(np.asarray(t), want)
    np.testing.assert_array_equal(np.asarray(gating.tokens_last(t, patch, mode, 2, 6, 12)), np.asarray(x))


@pytest.mark.parametrize("mode", ["block", "grid"])
def test_gmlp_layers_equal_the_blocked_layout(mode):
    x = jax.random.normal(jax.random.key(11), (2, 8, 12, 6))
    layer = gating.GmlpLayer(6, (2, 4) if mode == "block" else (4, 3), mode=mode, rngs=nnx.Rngs(0))
    layer.gating.token_mix.bias[...] = jax.random.normal(jax.random.key(12), layer.gating.token_mix.bias.shape)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(_old_gmlp_layer(layer, x)), atol=1e-6)
    weights = gating.SpatialGatingWeights(6, block_size=(2, 4), grid_size=(4, 3), rngs=nnx.Rngs(1))
    np.testing.assert_allclose(np.asarray(weights(x)), np.asarray(_old_gating_weights(weights, x)), atol=1e-6)


@pytest.mark.parametrize("use_bias, dtype", [(True, None), (False, None), (True, jnp.bfloat16)])
def test_dense_split_and_concat_equal_the_wide_layer(use_bias, dtype):
    dense = Linear(6, 8, use_bias=use_bias, dtype=dtype, rngs=nnx.Rngs(0))
    if use_bias:
        dense.bias[...] = jax.random.normal(jax.random.key(6), dense.bias.shape)
    x = jax.random.normal(jax.random.key(7), (3, 5, 6))
    tol = 1e-6 if dtype is None else 2e-2
    for got, want in zip(dense_split(dense, x), _old_split(dense, x)):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), atol=tol)
    parts = [x[..., :2], x[..., 2:]]
    got, want = dense_concat(dense, parts), _old_concat(dense, parts)
    assert got.dtype == want.dtype and got.shape == (3, 5, 8)
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), atol=tol)


def _old_paths(monkeypatch):
    monkeypatch.setattr(maxim_blocks, "resize_bilinear", _jax_resize)
    monkeypatch.setattr(gating, "mix_tokens", _old_mix_tokens)
    monkeypatch.setattr(gating, "dense_split", _old_split)
    monkeypatch.setattr(gating, "dense_concat", _old_concat)
    monkeypatch.setattr(gating.GmlpLayer, "__call__", _old_gmlp_layer)
    monkeypatch.setattr(gating.SpatialGatingWeights, "__call__", _old_gating_weights)


def _small_maxim():
    # depth 3: resizes by 2 and 4 both ways; 2 stages: the cross-stage gating and SAM paths too
    return MAXIM(features=8, depth=3, num_stages=2, block_size_hr=(4, 4), block_size_lr=(2, 2),
                 grid_size_hr=(4, 4), grid_size_lr=(2, 2), rngs=nnx.Rngs(0))


def _train_three_steps(data):
    model = _small_maxim()
    model.train()
    # SGD: a rounding-level gradient difference stays rounding-level (Adam's normalisation would blow a
    # near-zero gradient's up to the learning rate)
    state = init_train_state(model, optax.sgd(1e-6))  # the random model's gradients are large
    step = make_train_step(get_loss_fn("restore"))
    losses = []
    for i in range(3):
        state, metrics = step(state, data, jax.random.key(i))
        losses.append(float(metrics["loss"]))
    return losses, state.params


class _GatedPair(nnx.Module):
    """Every fast path in one small graph: a multi-axis gMLP block between a 4x shrink and a 2x grow, and the
    cross-gating weights."""

    def __init__(self, rngs):
        self.down = maxim_blocks.ResizeConv(4, 8, 0.25, rngs=rngs)
        self.block = gating.MultiAxisGmlpBlock(8, block_size=(2, 2), grid_size=(2, 2), rngs=rngs)
        self.gate = gating.SpatialGatingWeights(8, block_size=(2, 2), grid_size=(2, 2), rngs=rngs)
        self.up = maxim_blocks.ResizeConv(8, 4, 2.0, rngs=rngs)

    def __call__(self, x):
        y = self.block(self.down(x))
        return self.up(y * self.gate(y))


def _sgd_steps(x, steps=3):
    model = _GatedPair(nnx.Rngs(0))
    graphdef, params = nnx.split(model)

    @jax.jit
    def step(params):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((nnx.merge(graphdef, p)(x) - 0.5) ** 2))(params)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), loss

    losses = []
    for _ in range(steps):
        params, loss = step(params)
        losses.append(float(loss))
    return losses, params


def test_gated_blocks_train_as_the_old_paths(monkeypatch):
    """Three SGD steps through all the fast paths (8x8 -> 2x2 -> 4x4, both mixing axes), against the old paths:
    the same losses and weights to float32 rounding. The whole model: the test below (slow) and the goldens."""
    x = jax.random.uniform(jax.random.key(9), (2, 8, 8, 4))
    fast_losses, fast_params = _sgd_steps(x)
    with monkeypatch.context() as m:
        _old_paths(m)
        old_losses, old_params = _sgd_steps(x)
    np.testing.assert_allclose(fast_losses, old_losses, rtol=1e-6)
    assert fast_losses[-1] < fast_losses[0]
    for got, want in zip(jax.tree.leaves(fast_params), jax.tree.leaves(old_params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


@pytest.mark.slow  # the goldens run the fast paths through whole models in the default suite
def test_maxim_forward_equals_the_old_paths(monkeypatch):
    """A small two-stage MAXIM at 32x32 (both mixing axes, resizes by 2 and 4 both ways): the outputs of every
    stage and scale, fast paths against the old ones."""
    x = jax.random.uniform(jax.random.key(8), (2, 32, 32, 3))
    model = _small_maxim()
    model.eval()
    graphdef, params = nnx.split(model)

    def forward():  # a fresh function each time: jit would otherwise reuse the first trace
        return jax.jit(lambda p, x: jax.tree.leaves(nnx.merge(graphdef, p)(x)))(params, x)

    fast_out = forward()
    with monkeypatch.context() as m:
        _old_paths(m)
        old_out = forward()
    assert len(fast_out) == len(old_out) > 1
    for got, want in zip(fast_out, old_out):
        # float32 reassociation (the split sums of dense_concat), grown through the random model's large outputs
        scale = float(jnp.abs(want).max())
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6 * scale, rtol=0)


@pytest.mark.slow
def test_maxim_training_equals_the_old_paths(monkeypatch):
    """The same small MAXIM, three SGD steps of the training loop's step (about a minute of compiling a side)."""
    x = jax.random.uniform(jax.random.key(8), (2, 32, 32, 3))
    data = {"input": x, "target": jnp.clip(x + 0.1, 0, 1)}
    fast_losses, fast_params = _train_three_steps(data)
    with monkeypatch.context() as m:
        _old_paths(m)
        old_losses, old_params = _train_three_steps(data)
    np.testing.assert_allclose(fast_losses, old_losses, rtol=1e-5)
    assert fast_losses[-1] != fast_losses[0]  # the weights moved
    for got, want in zip(jax.tree.leaves(fast_params), jax.tree.leaves(old_params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-4)
