"""SMHA's fast paths against the code they replaced: attention without a head axis, RoPE tables made once."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flaxzoo.layers.smha as smha
from flaxzoo.layers.attention import dot_product_attention
from flaxzoo.models.uoe import UoELM
from flaxzoo.train.step import init_train_state, make_train_step
from flaxzoo.train.tasks.lm import make_loss_fn


def _old_rope(u, positions, theta=10000.0):
    """The rotation as it was: full-width tables broadcast to u, rotated = [-u2 | u1]."""
    dh = u.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, dh, 2, dtype=jnp.float32) / dh))
    ang = positions[..., None].astype(jnp.float32) * inv_freq
    ang = jnp.concatenate([ang, ang], axis=-1)
    rotated = jnp.concatenate([-u[..., dh // 2:], u[..., :dh // 2]], axis=-1)
    return (u * jnp.cos(ang) + rotated * jnp.sin(ang)).astype(u.dtype)


def _old_attend(q, k, v, *, scale, bias=None, mask=None):
    """Through the multi-head core with a size-1 head axis, as SMHA called it."""
    one_head = lambda t: t[..., None, :]  # noqa: E731
    bias = None if bias is None else bias[..., None, :, :]
    return dot_product_attention(one_head(q), one_head(k), one_head(v), scale=scale, bias=bias, mask=mask)[..., 0, :]


def test_rope_tables_equal_the_broadcast_rotation():
    u = jax.random.normal(jax.random.key(0), (4, 3, 10, 16))
    tokens = jax.random.randint(jax.random.key(1), (4, 3, 10), 0, 500)
    got = jax.jit(lambda u, p: smha.rotate_half_rope(u, p))(u, tokens)  # traced positions: the barrier path
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jax.jit(_old_rope)(u, tokens)))
    slots = np.arange(10)  # static positions: numpy tables, the same angles to float32 rounding of cos/sin
    got = jax.jit(lambda u: smha.rotate_half_rope(u, slots))(u)
    np.testing.assert_allclose(np.asarray(got), np.asarray(_old_rope(u, jnp.asarray(slots))), atol=2e-6, rtol=0)
    grads = [jax.grad(lambda u, f=f: (f(u, tokens) ** 2).sum())(u) for f in (smha.rotate_half_rope, _old_rope)]
    np.testing.assert_allclose(np.asarray(grads[0]), np.asarray(grads[1]), atol=1e-5)


def _three_steps(ids, rope):
    model = UoELM(vocab_size=64, dim=32, depth=2, num_heads=4, hidden_dim=64, mode="trained", rope=rope,
                  rngs=nnx.Rngs(0))
    state = init_train_state(model, optax.adamw(1e-3))
    step = make_train_step(make_loss_fn())
    losses = []
    for i in range(3):
        state, metrics = step(state, {"tokens": ids}, jax.random.key(i))
        losses.append(float(metrics["loss"]))
    return losses, state.params


@pytest.mark.parametrize("rope", ["slot", "token"])
def test_smha_lm_trains_as_the_old_paths(monkeypatch, rope):
    """Forward and three AdamW steps of a causal UoE LM (SMHA with RoPE and a causal mask over slots)."""
    ids = jax.random.randint(jax.random.key(2), (2, 17), 0, 64)
    fast_losses, fast_params = _three_steps(ids, rope)
    with monkeypatch.context() as m:
        m.setattr(smha, "attend", _old_attend)
        m.setattr(smha, "rope_tables", lambda pos, dim, theta: (None, (pos, theta)))
        m.setattr(smha, "apply_rope", lambda u, _, pos_theta: _old_rope(u, jnp.asarray(pos_theta[0]), pos_theta[1]))
        old_losses, old_params = _three_steps(ids, rope)
    np.testing.assert_allclose(fast_losses, old_losses, rtol=1e-6)
    assert fast_losses[-1] < fast_losses[0]
    for got, want in zip(jax.tree.leaves(fast_params), jax.tree.leaves(old_params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-6)

