"""Parameter initializers that sample on the host with numpy.

Eager `jax.random` initializers compile one small XLA program per parameter shape; a model with
hundreds of distinct shapes (MAXIM S-3: 2,754 tensors) then takes minutes to build on CPU. These
initializers draw from the same distributions with numpy, seeded from the NNX key, so building
costs no compilation. Under tracing (`nnx.eval_shape`, a jitted constructor) they defer to the
equivalent jax initializer.
"""
from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


_local = threading.local()


@contextlib.contextmanager
def shapes_only():
    """Within this context, traced initializers return zeros: for `nnx.eval_shape`, where only shapes
    matter. Tracing thousands of jax.random calls makes eval_shape of a big model take minutes, because
    NNX inspects the growing trace once per RNG draw."""
    old = getattr(_local, "shapes_only", False)
    _local.shapes_only = True
    try:
        yield
    finally:
        _local.shapes_only = old


def _is_traced(key) -> bool:
    return isinstance(key, jax.core.Tracer)


def _shapes_only() -> bool:
    return getattr(_local, "shapes_only", False)


def _rng(key) -> np.random.Generator:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data).astype(np.uint64).ravel().tolist())


def _truncated_normal(rng: np.random.Generator, shape, lower=-2.0, upper=2.0) -> np.ndarray:
    outside = (lambda x: np.abs(x) > upper) if lower == -upper else (lambda x: (x < lower) | (x > upper))
    x = rng.standard_normal(shape)
    bad = outside(x)  # one pass over the draws instead of three in the symmetric case
    while bad.any():  # resample the tails (4.6% of draws a round)
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = outside(x)
    return x


def _to_device(x: np.ndarray, dtype) -> jax.Array:
    # Cast on the host, then a plain transfer: jnp.asarray(x, dtype) runs a small compiled convert per
    # new shape (about 1 s of Swin-T's create_model). The values are the same (numpy and XLA both round
    # float64 -> float32 to nearest even).
    return jax.device_put(np.asarray(x, dtype=np.dtype(dtype)))


def _host(fallback, sample):
    """An initializer that draws `sample(rng, shape)` with numpy, or defers to `fallback` when traced."""

    def init(key, shape, dtype=jnp.float32):
        if _is_traced(key):
            return jnp.zeros(shape, dtype) if _shapes_only() else fallback(key, shape, dtype)
        return _to_device(sample(_rng(key), tuple(shape)), dtype)

    return init


_TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def normal(stddev: float = 0.02):
    """Host version of `nnx.initializers.normal(stddev)`."""
    return _host(nnx.initializers.normal(stddev), lambda rng, shape: stddev * rng.standard_normal(shape))


def truncated_normal(stddev: float = 0.02):
    """Host version of `nnx.initializers.truncated_normal(stddev)` (cut at +-2 sigma, std = stddev)."""
    return _host(nnx.initializers.truncated_normal(stddev),
                 lambda rng, shape: stddev / _TRUNCATED_STD * _truncated_normal(rng, shape))


def lecun_normal():
    """Host version of flax's `lecun_normal` (truncated normal, fan_in = prod(shape[:-1]))."""

    def sample(rng, shape):
        fan_in = int(np.prod(shape[:-1]))
        return np.sqrt(1.0 / fan_in) / _TRUNCATED_STD * _truncated_normal(rng, shape)

    return _host(nnx.initializers.lecun_normal(), sample)


def constant(value: float):
    """Host constant (zeros/ones) without a per-shape compiled fill."""

    def init(key, shape, dtype=jnp.float32):
        if _is_traced(key):
            return jnp.full(shape, value, dtype)
        return _to_device(np.full(tuple(shape), value), dtype)

    return init
