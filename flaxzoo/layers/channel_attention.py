"""Channel attention: squeeze-and-excitation and the residual blocks built on it (MAXIM's RCAB, RDCAB).

`official_names()` on each module gives the flax Linen names of the MAXIM checkpoint.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers.conv import conv2d
from flaxzoo.layers.mlp import Mlp, gelu_tanh
from flaxzoo.layers.norm import LayerNorm

LN_EPS = 1e-6


class ChannelAttention(nnx.Module):
    """x * sigmoid(excite(relu(squeeze(mean_hw(x))))) with 1x1 convs; squeeze width = dim // reduction."""

    def __init__(self, dim: int, *, reduction: int = 4, use_bias: bool = True, dtype=None, rngs: nnx.Rngs):
        self.squeeze = conv2d(dim, dim // reduction, 1, use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.excite = conv2d(dim // reduction, dim, 1, use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"squeeze": "Conv_0", "excite": "Conv_1"}

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jnp.mean(x, axis=(1, 2), keepdims=True)
        y = jax.nn.sigmoid(self.excite(jax.nn.relu(self.squeeze(y))))
        return x * y


class RCAB(nnx.Module):
    """Residual channel attention block: x + CA(conv(lrelu(conv(LN(x)))))."""

    def __init__(self, dim: int, *, reduction: int = 4, lrelu_slope: float = 0.2, use_bias: bool = True,
                 dtype=None, rngs: nnx.Rngs):
        self.lrelu_slope = lrelu_slope
        self.norm = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.conv1 = conv2d(dim, dim, 3, use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.conv2 = conv2d(dim, dim, 3, use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.channel_attention = ChannelAttention(dim, reduction=reduction, use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"norm": "LayerNorm"}

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.leaky_relu(self.conv1(self.norm(x)), negative_slope=self.lrelu_slope)
        return x + self.channel_attention(self.conv2(y))


class RDCAB(nnx.Module):
    """Residual dense channel attention block: x + CA(MLP(LN(x))), MLP dim -> dim -> dim with tanh GELU."""

    def __init__(self, dim: int, *, reduction: int = 4, use_bias: bool = True, dtype=None, rngs: nnx.Rngs):
        self.norm = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        # The reference never passes `deterministic` to this MLP's dropout, so it is always inert: rate 0.
        self.channel_mixing = Mlp(dim, dim, dim, act=gelu_tanh, dropout=0.0, use_bias=use_bias, dtype=dtype,
                                  rngs=rngs)
        self.channel_attention = ChannelAttention(dim, reduction=reduction, use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"norm": "LayerNorm"}

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.channel_attention(self.channel_mixing(self.norm(x)))
