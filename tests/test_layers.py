"""Shared layers: window maths, masks, position biases, attention, drop path, norms."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from conftest import GOLDEN
from flaxzoo.layers import (ContinuousPositionBias, DropPath, LayerNorm, Mlp, RelativePositionBias,
                            dot_product_attention, drop_path_rates, pad_to_multiple, relative_position_index,
                            shifted_window_mask, window_partition, window_unpartition)
from flaxzoo.layers.position import log_spaced_coords


def test_window_partition_roundtrip_and_order():
    x = jnp.arange(2 * 8 * 12 * 3, dtype=jnp.float32).reshape(2, 8, 12, 3)
    w = window_partition(x, (4, 6))
    assert w.shape == (2 * 2 * 2, 24, 3)
    # second window of the first image is the top-right 4x6 block, row-major inside
    np.testing.assert_array_equal(w[1].reshape(4, 6, 3), x[0, :4, 6:])
    np.testing.assert_array_equal(window_unpartition(w, (4, 6), 8, 12), x)


def test_pad_to_multiple_pads_bottom_right_with_zeros():
    x = jnp.ones((1, 5, 7, 2))
    y, pad = pad_to_multiple(x, (4, 4))
    assert y.shape == (1, 8, 8, 2) and pad == (3, 1)
    assert float(y[:, 5:].sum()) == 0 and float(y[:, :, 7:].sum()) == 0 and float(y[:, :5, :7].sum()) == 70


def test_relative_position_index_matches_swin_layout():
    idx = relative_position_index((7, 7))
    assert idx.shape == (49, 49) and idx.min() == 0 and idx.max() == 168
    np.testing.assert_array_equal(idx[0, :3], [84, 83, 82])
    assert (np.diag(idx) == 84).all()
    # non-square: (2*4-1)*(2*6-1) = 77 entries, all used
    assert len(np.unique(relative_position_index((4, 6)))) == 77


def test_shifted_window_mask():
    assert shifted_window_mask(56, 56, (7, 7), (0, 0)) is None
    m = shifted_window_mask(56, 56, (7, 7), (3, 3))
    assert m.shape == (64, 49, 49)
    assert set(np.unique(m)) == {0.0, -100.0}
    np.testing.assert_array_equal(m, m.transpose(0, 2, 1))
    assert (m[0] == 0).all()  # interior windows see no region boundary
    assert (m[-1] != 0).any()  # the bottom-right window mixes 4 regions
    # per-axis shift: only columns are shifted
    m2 = shifted_window_mask(4, 8, (4, 4), (0, 2))
    assert m2.shape == (2, 16, 16) and (m2[0] == 0).all() and (m2[1] != 0).any()


def test_dot_product_attention_matches_naive():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    q, k, v = (jax.random.normal(kk, (2, 5, 3, 4)) for kk in (k1, k2, k3))
    bias = jax.random.normal(k4, (1, 3, 5, 5))
    mask = jnp.tril(jnp.ones((5, 5), bool))
    out = dot_product_attention(q, k, v, bias=bias, mask=mask)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / 2.0 + np.asarray(bias)
    logits = np.where(np.asarray(mask), logits, -np.inf)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, np.einsum("bhqk,bkhd->bqhd", p, v), atol=1e-5)


def test_relative_position_bias_gathers_table():
    rpb = RelativePositionBias((3, 3), 2, rngs=nnx.Rngs(0))
    bias = rpb()
    assert bias.shape == (2, 9, 9)
    table = np.asarray(rpb.relative_position_bias_table[...])
    np.testing.assert_array_equal(bias[:, 0, 0], table[12])  # centre entry (2*3-1)*2+2


def test_log_spaced_coords_bit_exact_with_timm():
    ref = np.load(GOLDEN / "swin" / "v2_t128.io.npz")["relative_coords_table_s0"][0]
    ours = log_spaced_coords((8, 8), (0, 0))
    np.testing.assert_array_equal(ours, ref)


def test_continuous_position_bias_range():
    cpb = ContinuousPositionBias((4, 4), 3, rngs=nnx.Rngs(0))
    b = cpb()
    assert b.shape == (3, 16, 16) and float(b.min()) > 0 and float(b.max()) < 16


def test_drop_path_train_vs_eval():
    assert drop_path_rates(0.2, 3) == pytest.approx([0.0, 0.1, 0.2])
    dp = DropPath(0.5, rngs=nnx.Rngs(dropout=1))
    x = jnp.ones((4000, 3))
    y = dp(x)
    per_sample = np.asarray(y[:, 0])
    assert set(np.unique(per_sample)) == {0.0, 2.0}  # whole samples dropped, survivors rescaled
    assert abs(per_sample.mean() - 1.0) < 0.1
    dp.eval()
    np.testing.assert_array_equal(dp(x), x)


def test_layernorm_eps_is_used():
    x = jnp.full((1, 4), 1e-3) * jnp.array([1.0, -1.0, 1.0, -1.0])  # variance 1e-6
    y5 = LayerNorm(4, eps=1e-5, rngs=nnx.Rngs(0))(x)
    y6 = LayerNorm(4, eps=1e-6, rngs=nnx.Rngs(0))(x)
    np.testing.assert_allclose(np.abs(y5), 1e-3 / np.sqrt(1e-6 + 1e-5), rtol=1e-3)
    np.testing.assert_allclose(np.abs(y6), 1e-3 / np.sqrt(2e-6), rtol=1e-3)


def test_params_carry_logical_axis_names():
    m = Mlp(8, 16, rngs=nnx.Rngs(0))
    assert m.fc1.kernel.get_metadata()["out_sharding"] == ("embed", "mlp")
    assert m.fc2.kernel.get_metadata()["out_sharding"] == ("mlp", "embed")


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 4, 5)])
def test_linear_2d_gemm_equals_the_nd_dot_general_forward_and_backward(shape):
    """Linear flattens its input to (rows, in) for the matmul (flaxzoo.layers.linear.matmul_2d): the values and
    all gradients must be those of nnx.Linear's N-D dot_general."""
    from flaxzoo.layers import Linear
    graphdef, state = nnx.split(Linear(5, 7, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(1), shape)
    ours = lambda state, x: Linear.__call__(nnx.merge(graphdef, state), x)  # noqa: E731
    ref = lambda state, x: nnx.Linear.__call__(nnx.merge(graphdef, state), x)  # noqa: E731
    assert ours(state, x).shape == shape[:-1] + (7,)
    np.testing.assert_allclose(ours(state, x), ref(state, x), rtol=1e-6, atol=1e-6)
    cot = jax.random.normal(jax.random.key(2), shape[:-1] + (7,))
    grads_ours, grads_ref = jax.vjp(ours, state, x)[1](cot), jax.vjp(ref, state, x)[1](cot)
    for a, r in zip(jax.tree.leaves(grads_ours), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("patch,dtype,bias", [((4, 4), jnp.float32, True), ((2, 3), jnp.float32, False),
                                              ((4, 4), jnp.bfloat16, True)])
def test_patch_conv_equals_the_strided_conv_forward_and_backward(patch, dtype, bias):
    """Swin's patch embedding runs its stride-equals-kernel conv as a GEMM over patches (conv.patch_conv): the
    values, the dtype and every gradient must be those of nnx.Conv."""
    from flaxzoo.layers.conv import patch_conv
    graphdef, state = nnx.split(nnx.Conv(3, 7, kernel_size=patch, strides=patch, padding="VALID", use_bias=bias,
                                         dtype=dtype, rngs=nnx.Rngs(0)))
    if bias:  # a non-zero bias, so its gradient and broadcast are checked too
        state = jax.tree.map(lambda v: v + 0.5 if v.ndim == 1 else v, state)
    x = jax.random.normal(jax.random.key(1), (2, 4 * patch[0], 3 * patch[1], 3))
    ours = lambda state, x: patch_conv(nnx.merge(graphdef, state), x)  # noqa: E731
    ref = lambda state, x: nnx.merge(graphdef, state)(x)  # noqa: E731
    assert ours(state, x).shape == (2, 4, 3, 7) and ours(state, x).dtype == ref(state, x).dtype == dtype
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(np.asarray(ours(state, x), np.float32), np.asarray(ref(state, x), np.float32),
                               rtol=tol, atol=tol)
    cot = jax.random.normal(jax.random.key(2), (2, 4, 3, 7)).astype(dtype)
    grads_ours, grads_ref = jax.vjp(ours, state, x)[1](cot), jax.vjp(ref, state, x)[1](cot)
    for a, r in zip(jax.tree.leaves(grads_ours), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(r, np.float32), rtol=tol, atol=tol * 4)


def test_patch_conv_refuses_a_conv_that_is_not_a_patch_conv():
    from flaxzoo.layers.conv import patch_conv
    overlapping = nnx.Conv(3, 4, kernel_size=(3, 3), strides=(2, 2), padding="VALID", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="strides == kernel_size"):
        patch_conv(overlapping, jnp.zeros((1, 8, 8, 3)))
    patchy = nnx.Conv(3, 4, kernel_size=(4, 4), strides=(4, 4), padding="VALID", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="multiples of the patch"):
        patch_conv(patchy, jnp.zeros((1, 6, 8, 3)))


def test_attention_softmax_equals_jax_softmax_values_and_derivatives():
    """attention.softmax differentiates through its output (y * (t - sum(y t))) rather than through exp, sum and
    division as jax 0.10's default softmax does: the same values bit for bit, the same gradients to rounding,
    also for rows holding the lowest float (Swin's masked logits) and under jvp, vjp and a second derivative."""
    from flaxzoo.layers.attention import softmax
    x = 3 * jax.random.normal(jax.random.key(0), (2, 3, 7, 7))
    x = x.at[0, 0, 0, :3].set(jnp.finfo(jnp.float32).min)
    np.testing.assert_array_equal(softmax(x), jax.nn.softmax(x, axis=-1))
    t = jax.random.normal(jax.random.key(1), x.shape)
    np.testing.assert_allclose(jax.jvp(softmax, (x,), (t,))[1], jax.jvp(jax.nn.softmax, (x,), (t,))[1], atol=1e-6)
    np.testing.assert_allclose(jax.vjp(softmax, x)[1](t)[0], jax.vjp(jax.nn.softmax, x)[1](t)[0], atol=1e-6)
    second = lambda f: jax.grad(lambda z: jnp.sum(jax.grad(lambda w: jnp.sum(f(w) ** 3))(z) ** 2))(x)  # noqa: E731
    np.testing.assert_allclose(second(softmax), second(jax.nn.softmax), rtol=1e-4, atol=1e-5)
    assert softmax(jnp.ones((2, 4), jnp.bfloat16)).dtype == jnp.bfloat16


def test_expert_matmul_equals_the_einsum_forward_and_backward():
    from flaxzoo.layers.linear import expert_matmul
    x = jax.random.normal(jax.random.key(0), (3, 2, 4, 5))
    w = jax.random.normal(jax.random.key(1), (3, 5, 6))
    ref = lambda x, w: jnp.einsum("egkd,edf->egkf", x, w)  # noqa: E731
    np.testing.assert_allclose(expert_matmul(x, w), ref(x, w), rtol=1e-6, atol=1e-6)
    cot = jax.random.normal(jax.random.key(2), (3, 2, 4, 6))
    for a, r in zip(jax.vjp(expert_matmul, x, w)[1](cot), jax.vjp(ref, x, w)[1](cot)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


def test_gelu_exact_is_the_exact_gelu_and_keeps_the_dtype():
    from flaxzoo.layers import gelu_exact
    x = jnp.linspace(-10.0, 10.0, 4001)
    np.testing.assert_allclose(gelu_exact(x), jax.nn.gelu(x, approximate=False), rtol=0, atol=2e-6)
    grad = jax.vmap(jax.grad(gelu_exact))(x)
    np.testing.assert_allclose(grad, jax.vmap(jax.grad(lambda v: jax.nn.gelu(v, approximate=False)))(x), atol=2e-6)
    assert gelu_exact(jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16
