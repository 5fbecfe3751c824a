"""Host-side parameter draws (flaxzoo/layers/host_init.py): distribution, determinism, dtypes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flaxzoo.layers import host_init


def _key(seed=0):
    return nnx.Rngs(seed).params()


def test_truncated_normal_matches_the_distribution_and_bounds():
    w = np.asarray(host_init.truncated_normal(0.02)(_key(), (700, 1000)))  # several chunks
    assert w.dtype == np.float32
    edge = 2 * 0.02 / host_init._TRUNCATED_STD  # the unit draw is cut at +-2
    assert np.abs(w).max() <= edge * (1 + 1e-6)
    assert abs(w.std() - 0.02) < 2e-4 and abs(w.mean()) < 2e-4
    # tails resampled, not clipped (clipping would put 4.6% of the draws on the bounds)
    assert np.mean(np.abs(w) > 0.99 * edge) < 0.005


def test_draws_are_deterministic_and_independent_of_threads(monkeypatch):
    init = host_init.truncated_normal(0.02)
    a = np.asarray(init(_key(1), (600, 900)))
    host_init._pool.cache_clear()
    monkeypatch.setattr(host_init.os, "cpu_count", lambda: 1)
    try:
        b = np.asarray(init(_key(1), (600, 900)))
    finally:
        host_init._pool.cache_clear()
    np.testing.assert_array_equal(a, b)
    c = np.asarray(init(_key(2), (600, 900)))
    assert not np.allclose(a, c)
    # chunks draw different numbers (no chunk repeats another's generator)
    flat = a.ravel()
    assert not np.allclose(flat[:1000], flat[host_init._CHUNK:host_init._CHUNK + 1000])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_normal_draws_have_the_normal_shape(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        z = np.asarray(host_init.normal(1.0)(_key(3), (1 << 20,), dtype)).astype(np.float64)
    se = 3 / np.sqrt(z.size)  # about 3 standard errors of a tail fraction
    for edge, tail in [(0.5, 0.617075), (1.0, 0.317311), (2.0, 0.0455003), (3.0, 0.0026998)]:
        assert abs(np.mean(np.abs(z) > edge) - tail) < se, edge
    assert abs(np.mean(z > 0) - 0.5) < se and abs(np.mean(z**4) - 3.0) < 0.03  # symmetric, normal kurtosis
    # the two halves of each chunk come from the same uniform pairs (cos and sin): independent squares
    part = z[:host_init._CHUNK]
    half = part.size // 2
    assert abs(np.corrcoef(part[:half] ** 2, part[half:] ** 2)[0, 1]) < 0.02
    odd = np.asarray(host_init.normal(1.0)(_key(4), (3, 5)))  # an odd count fills every slot
    assert np.isfinite(odd).all() and len(np.unique(odd)) == 15


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_param_dtypes(dtype):
    w = host_init.lecun_normal()(_key(), (64, 32), dtype)
    assert w.dtype == dtype
    assert abs(float(jnp.std(w.astype(jnp.float32))) - (1 / 8)) < 0.02
    z = host_init.normal(1.0)(_key(), (0, 5), dtype)
    assert z.shape == (0, 5) and z.dtype == dtype


def test_float64_params_get_float64_draws():
    with jax.enable_x64(True):
        w = host_init.normal(1.0)(_key(), (1000,), jnp.float64)
        assert w.dtype == jnp.float64
        assert np.unique(np.asarray(w).astype(np.float32).astype(np.float64) != np.asarray(w)).tolist() == [True]


def test_traced_keys_defer_to_jax():
    shape = jax.eval_shape(lambda k: host_init.truncated_normal(0.02)(k, (3, 4)), jax.random.key(0))
    assert shape.shape == (3, 4)
