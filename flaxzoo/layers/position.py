"""Relative position biases for windowed attention.

`RelativePositionBias` is Swin V1's learned table; `ContinuousPositionBias` is Swin V2's
log-spaced coordinate MLP, which transfers across window sizes.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import Linear, param_init
from flaxzoo.layers.window import Size2, relative_position_index


def _gather_bias(table: jax.Array, window: Size2) -> jax.Array:
    """((2wh-1)(2ww-1), heads) table -> (heads, N, N) bias."""
    n = window[0] * window[1]
    index = relative_position_index(tuple(window)).reshape(-1)
    return table[index].reshape(n, n, -1).transpose(2, 0, 1)


class RelativePositionBias(nnx.Module):
    """Learned bias table ((2wh-1)(2ww-1), heads), gathered per token pair (Swin V1)."""

    def __init__(self, window: Size2, num_heads: int, *, rngs: nnx.Rngs):
        self.window = tuple(window)
        size = (2 * self.window[0] - 1) * (2 * self.window[1] - 1)
        init = param_init(host_init.truncated_normal(stddev=0.02), (None, "heads"))
        self.relative_position_bias_table = nnx.Param(init(rngs.params(), (size, num_heads), jnp.float32))

    def __call__(self) -> jax.Array:
        return _gather_bias(self.relative_position_bias_table[...], self.window)


@functools.lru_cache(maxsize=None)
def log_spaced_coords(window: Size2, pretrained_window: Size2) -> np.ndarray:
    """(2wh-1, 2ww-1, 2) float32 table, computed in float32 in timm's order of operations
    (arange, /(w-1), *8, sign*log2(|x|+1)/3) so it matches the reference bit for bit."""
    denom = [p if p > 0 else w for w, p in zip(window, pretrained_window)]
    axes = []
    for w, d in zip(window, denom):
        r = np.arange(-(w - 1), w, dtype=np.float32)
        axes.append(r / np.float32(max(d - 1, 1)))
    table = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float32)
    table = table * np.float32(8)
    table = np.sign(table) * np.log2(np.abs(table) + np.float32(1.0)) / np.float32(3.0)
    table = table.astype(np.float32)
    table.setflags(write=False)
    return table


class ContinuousPositionBias(nnx.Module):
    """Swin V2 bias: 16 * sigmoid(MLP(log-spaced relative coords)), gathered per token pair.

    Parameter names follow timm (`cpb_mlp.0` Linear(2, hidden), ReLU, `cpb_mlp.2` Linear(hidden, heads)
    without bias); here they are `fc1` and `fc2`.
    """

    def __init__(self, window: Size2, num_heads: int, *, pretrained_window: Size2 = (0, 0), hidden: int = 512,
                 rngs: nnx.Rngs):
        self.window = tuple(window)
        self.pretrained_window = tuple(pretrained_window)
        self.fc1 = Linear(2, hidden, use_bias=True, axes=(None, "mlp"), rngs=rngs)
        self.fc2 = Linear(hidden, num_heads, use_bias=False, axes=("mlp", "heads"), rngs=rngs)

    def table(self) -> jax.Array:
        """MLP output before the gather and the 16*sigmoid: (2wh-1, 2ww-1, heads)."""
        coords = jnp.asarray(log_spaced_coords(self.window, self.pretrained_window))
        return self.fc2(jax.nn.relu(self.fc1(coords)))

    def __call__(self) -> jax.Array:
        table = self.table()
        bias = _gather_bias(table.reshape(-1, table.shape[-1]), self.window)
        return 16.0 * jax.nn.sigmoid(bias)
