"""Stochastic depth (drop a residual branch per sample) and its linear schedule."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def drop_path_rates(max_rate: float, num_blocks: int) -> list[float]:
    """Linear schedule 0 -> max_rate over all blocks of a network, as Swin/DeiT use."""
    return [float(r) for r in np.linspace(0.0, max_rate, num_blocks)] if num_blocks else []


class DropPath(nnx.Module):
    """Zero the whole branch of a sample with probability `rate`, rescale the survivors.

    Active only when not deterministic (set with `model.train()` / `model.eval()` or the
    `deterministic` argument), exactly like `nnx.Dropout`.
    """

    def __init__(self, rate: float = 0.0, *, deterministic: bool = False, rngs: nnx.Rngs | None = None):
        self.rate = float(rate)
        self.deterministic = deterministic
        self.rngs = rngs.fork() if (rngs is not None and rate > 0) else None

    def __call__(self, x: jax.Array, *, deterministic: bool | None = None) -> jax.Array:
        deterministic = self.deterministic if deterministic is None else deterministic
        if deterministic or self.rate == 0.0:
            return x
        if self.rngs is None:
            raise ValueError("DropPath with rate > 0 needs rngs to run in training mode.")
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = jax.random.bernoulli(self.rngs.dropout(), keep, shape)
        return jnp.where(mask, x / keep, jnp.zeros_like(x))
