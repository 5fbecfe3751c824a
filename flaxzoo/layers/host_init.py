"""Parameter initializers that sample on the host with numpy.

Eager `jax.random` initializers compile one small XLA program per parameter shape; a model with
hundreds of distinct shapes (MAXIM S-3: 2,754 tensors) then takes minutes to build on CPU. These
initializers draw from the same distributions with numpy, seeded from the NNX key, so building
costs no compilation. Under tracing (`nnx.eval_shape`, a jitted constructor) they defer to the
equivalent jax initializer.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
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


def _seed(key) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).astype(np.uint64).ravel().tolist()


_CHUNK = 1 << 18  # draws per generator: fixed, so the values do not depend on the number of threads


def _draws(seed: list[int], shape, dtype, scale: float = 1.0, lower: float | None = None,
           upper: float | None = None) -> np.ndarray:
    """`scale` times standard normals (cut to [lower, upper] by resampling when given) for `shape`, drawn in chunks of
    `_CHUNK` from generators spawned from `seed`, the chunks in parallel threads (numpy's generators
    and ufuncs release the GIL). float32 draws cost about half as much as float64 ones and are exact
    for every parameter dtype up to 32 bits."""
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    n_chunks = -(-out.size // _CHUNK)
    generators = [np.random.Generator(np.random.PCG64(s))
                  for s in np.random.SeedSequence(seed).spawn(n_chunks)]

    def fill(i: int) -> None:
        rng, part = generators[i], out[i * _CHUNK:(i + 1) * _CHUNK]
        _fill_normal(rng, part)
        if lower is not None:
            bad = np.flatnonzero((part < lower) | (part > upper))
            while bad.size:  # resample only the tails (4.6% of draws a round), never another pass over all
                redraw = np.empty(bad.size, dtype=dtype)
                _fill_normal(rng, redraw)
                part[bad] = redraw
                bad = bad[(part[bad] < lower) | (part[bad] > upper)]
        if scale != 1.0:
            part *= dtype(scale)  # in the worker thread, in place

    if n_chunks > 1:
        list(_pool().map(fill, range(n_chunks)))
    elif n_chunks:
        fill(0)
    return out.reshape(shape)


def _fill_normal(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill `out` with standard normals by the Box-Muller transform of uniforms: vectorised log, sqrt,
    cos and sin cost about half of numpy's scalar ziggurat (`standard_normal`: 11.6 vs 5.2 ns a float32
    draw on the 2-core Xeon). Exact in distribution; with float32 uniforms the largest |draw| is
    sqrt(2 ln 2^24) = 5.8 (a normal exceeds it with probability 7e-9)."""
    half = -(-out.size // 2)
    uniforms = rng.random(2 * half, dtype=out.dtype)
    radius, angle = uniforms[:half], uniforms[half:]
    np.negative(radius, out=radius)
    np.log1p(radius, out=radius)  # log(1 - u), 1 - u in (0, 1]: never log(0)
    radius *= -2
    np.sqrt(radius, out=radius)
    angle *= out.dtype.type(2 * np.pi)
    rest = out.size - half
    np.cos(angle, out=out[:half])
    out[:half] *= radius
    np.sin(angle[:rest], out=out[half:])
    out[half:] *= radius[:rest]


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)),
                                                 thread_name_prefix="flaxzoo-init")


def _draw_dtype(dtype) -> type:
    return np.float64 if np.dtype(dtype).itemsize > 4 else np.float32


def _to_device(x: np.ndarray, dtype) -> jax.Array:
    # Cast on the host, then a plain transfer: jnp.asarray(x, dtype) runs a small compiled convert per
    # new shape (about 1 s of Swin-T's create_model). The values are the same (numpy and XLA both round
    # float64 -> float32 to nearest even).
    return jax.device_put(np.asarray(x, dtype=np.dtype(dtype)))


def _host(fallback, sample):
    """An initializer that draws `sample(seed, shape, draw_dtype)` with numpy, or defers to `fallback`
    when traced."""

    def init(key, shape, dtype=jnp.float32):
        if _is_traced(key):
            return jnp.zeros(shape, dtype) if _shapes_only() else fallback(key, shape, dtype)
        return _to_device(sample(_seed(key), tuple(shape), _draw_dtype(dtype)), dtype)

    return init


_TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def normal(stddev: float = 0.02):
    """Host version of `nnx.initializers.normal(stddev)`."""
    return _host(nnx.initializers.normal(stddev), lambda seed, shape, draw: _draws(seed, shape, draw, stddev))


def truncated_normal(stddev: float = 0.02):
    """Host version of `nnx.initializers.truncated_normal(stddev)` (cut at +-2 sigma, std = stddev)."""
    return _host(nnx.initializers.truncated_normal(stddev),
                 lambda seed, shape, draw: _draws(seed, shape, draw, stddev / _TRUNCATED_STD, -2.0, 2.0))


def lecun_normal():
    """Host version of flax's `lecun_normal` (truncated normal, fan_in = prod(shape[:-1]))."""

    def sample(seed, shape, draw):
        fan_in = int(np.prod(shape[:-1]))
        return _draws(seed, shape, draw, float(np.sqrt(1.0 / fan_in)) / _TRUNCATED_STD, -2.0, 2.0)

    return _host(nnx.initializers.lecun_normal(), sample)


def constant(value: float):
    """Host constant (zeros/ones) without a per-shape compiled fill."""

    def init(key, shape, dtype=jnp.float32):
        if _is_traced(key):
            return jnp.full(shape, value, dtype)
        return _to_device(np.full(tuple(shape), value), dtype)

    return init
