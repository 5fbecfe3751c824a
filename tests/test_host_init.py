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
