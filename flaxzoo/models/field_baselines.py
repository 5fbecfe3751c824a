"""The two baselines the proxy-node field is measured against, fitted by the same `field` task and loop.

FieldMlp   one global MLP on a positional encoding of x (NeRF-style sin/cos at octave frequencies).
FieldGrid  a dense feature grid over [-1, 1]^3 read by trilinear interpolation, then a small decoder.
Both return (sdf, rgb) like `ProxyField`; their sizes are set to match a proxy preset's parameter count in
the compactness sweep (BENCHMARKS.md).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import param_init
from flaxzoo.models.proxy_field import CoordinateMlp
from flaxzoo.models.registry import register
from flaxzoo.validate import InputError, check_positive_int


def _points(x, owner: str):
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(f"{owner} takes points (..., 3); got shape {x.shape}.")
    return x.reshape(-1, 3).astype(jnp.float32), x.shape[:-1]


def _split(out, lead):
    out = out.astype(jnp.float32)
    return out[:, 0].reshape(lead), jax.nn.sigmoid(out[:, 1:]).reshape(*lead, 3)


class FieldMlp(nnx.Module):
    def __init__(self, *, hidden: int = 64, num_freqs: int = 6, dtype=None, rngs: nnx.Rngs):
        check_positive_int(hidden, "hidden")
        self.num_freqs = int(num_freqs)
        self.mlp = CoordinateMlp(3 + 6 * self.num_freqs, hidden, 4, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        flat, lead = _points(x, "FieldMlp")
        freqs = (2.0 ** jnp.arange(self.num_freqs)) * jnp.pi
        angles = (flat[:, None, :] * freqs[:, None]).reshape(len(flat), -1)
        return _split(self.mlp(jnp.concatenate([flat, jnp.sin(angles), jnp.cos(angles)], -1)), lead)


def trilinear(grid, x):
    """Features of a (G, G, G, C) grid spanning [-1, 1]^3 at points x (B, 3) by trilinear interpolation."""
    g = grid.shape[0]
    pos = (jnp.clip(x, -1.0, 1.0) + 1.0) * 0.5 * (g - 1)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, g - 2)
    frac = pos - lo
    out = 0.0
    for corner in range(8):
        bits = jnp.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = lo + bits
        weight = jnp.prod(jnp.where(bits == 1, frac, 1.0 - frac), -1, keepdims=True)
        out = out + weight * grid[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


class FieldGrid(nnx.Module):
    def __init__(self, *, resolution: int = 16, channels: int = 8, hidden: int = 32, dtype=None, rngs: nnx.Rngs):
        for name, value in dict(resolution=resolution, channels=channels, hidden=hidden).items():
            check_positive_int(value, name)
        if resolution < 2:
            raise InputError(f"FieldGrid resolution must be at least 2; got {resolution}.")
        init = param_init(host_init.normal(0.1), ("height", "width", "length", "embed"))
        self.grid = nnx.Param(init(rngs.params(), (resolution, resolution, resolution, channels)))
        self.decoder = CoordinateMlp(channels, hidden, 4, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        flat, lead = _points(x, "FieldGrid")
        return _split(self.decoder(trilinear(self.grid[...], flat)), lead)


register("field_baseline_mlp", "field_baseline", FieldMlp, info=dict(task="field"), hidden=64, num_freqs=6)
register("field_baseline_grid", "field_baseline", FieldGrid, info=dict(task="field"), resolution=16, channels=8,
         hidden=32)
