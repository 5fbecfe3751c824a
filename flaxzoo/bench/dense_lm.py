"""The dense counterpart of a UoE language model: the same widths, every head and expert on every token.

A plain pre-norm MHA + MLP transformer with a tied head; with UoE's 4 heads and 4 experts of hidden/4 each it has
(almost exactly) the parameters of `flaxzoo.models.uoe.UoELM`, so a same-run speed ratio shows what routing saves.
Used by `scripts/benchmark.py --peer dense` and `scripts/bench_uoe.py`.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import LayerNorm, Linear, Mlp, dot_product_attention


class DenseBlock(nnx.Module):
    def __init__(self, dim, heads, hidden, *, dtype, rngs):
        self.heads = heads
        self.norm1 = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)
        self.qkv = Linear(dim, 3 * dim, axes=("embed", "heads"), dtype=dtype, rngs=rngs)
        self.proj = Linear(dim, dim, axes=("heads", "embed"), dtype=dtype, rngs=rngs)
        self.norm2 = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)
        self.mlp = Mlp(dim, hidden, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        b, n, d = x.shape
        q, k, v = jnp.split(self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads), 3, axis=2)
        o = dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0], mask=jnp.tril(jnp.ones((n, n), bool)))
        x = x + self.proj(o.reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class DenseLM(nnx.Module):
    """The dense counterpart: token embedding, pre-norm MHA + MLP blocks, final norm, tied head."""

    def __init__(self, vocab, dim, depth, heads, hidden, *, dtype=None, rngs):
        self.dim, self.dtype = dim, dtype
        self.embed = nnx.Embed(vocab, dim, rngs=rngs)
        self.blocks = nnx.List([DenseBlock(dim, heads, hidden, dtype=dtype, rngs=rngs) for _ in range(depth)])
        self.norm = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)

    def __call__(self, ids):
        x = self.embed(ids) * math.sqrt(self.dim)
        x = x.astype(self.dtype) if self.dtype else x
        for block in self.blocks:
            x = block(x)
        return self.embed.attend(self.norm(x)).astype(jnp.float32)
