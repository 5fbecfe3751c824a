"""Multi-head attention core shared by Swin windows, UoE SMHA and anything else.

Layout (batch, length, heads, head_dim) as `jax.nn.dot_product_attention`. Logits and
softmax run in float32 whatever the compute dtype, like every reference we match.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, scale: float | jax.Array | None = None,
                          bias: jax.Array | None = None, mask: jax.Array | None = None,
                          precision=None) -> jax.Array:
    """softmax(scale * q k^T + bias [masked]) v.

    q: (B, Lq, H, D), k/v: (B, Lk, H, D). `bias` broadcasts to (B, H, Lq, Lk) and is added
    (relative position bias, additive window mask). `mask` is boolean, True = attend; masked
    logits get the dtype's lowest value so a fully masked row gives a uniform distribution
    instead of NaN.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    # float32 at least (bf16/fp16 inputs), float64 kept when running in x64 mode.
    softmax_dtype = jnp.promote_types(q.dtype, jnp.float32)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=precision).astype(softmax_dtype) * scale
    if bias is not None:
        logits = logits + bias.astype(softmax_dtype)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(softmax_dtype).min)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v, precision=precision)
