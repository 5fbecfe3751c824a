"""Normalisation layers. `eps` is always explicit: Swin (torch) uses 1e-5, MAXIM (flax) 1e-6,
and the wrong one is a parity bug, not a rounding difference."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import param_init


class LayerNorm(nnx.LayerNorm):
    """LayerNorm over the last axis with logical axis names on scale and bias."""

    def __init__(self, dim: int, *, eps: float, axis_name: str | None = "embed", use_bias: bool = True,
                 dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
        axes = None if axis_name is None else (axis_name,)
        super().__init__(
            dim,
            epsilon=eps,
            use_bias=use_bias,
            scale_init=param_init(host_init.constant(1.0), axes),
            bias_init=param_init(host_init.constant(0.0), axes),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )


class RMSNorm(nnx.RMSNorm):
    """RMSNorm (scale only) with a logical axis name on the scale."""

    def __init__(self, dim: int, *, eps: float, axis_name: str | None = "embed",
                 dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
        axes = None if axis_name is None else (axis_name,)
        super().__init__(
            dim,
            epsilon=eps,
            scale_init=param_init(host_init.constant(1.0), axes),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
