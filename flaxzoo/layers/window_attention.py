"""Multi-head self-attention inside non-overlapping windows (Swin V1 and V2 flavours).

Input is already partitioned: (batch * windows, tokens, channels). Two variants:

- V1 (`cosine=False`): softmax(q k^T / sqrt(d) + relative position bias [+ mask]) v, with a
  learned `RelativePositionBias` table and a biased qkv projection.
- V2 (`cosine=True`): scaled cosine attention, cos(q, k) * exp(min(logit_scale, log 100)) per
  head, plus 16 * sigmoid(continuous position bias MLP). The qkv projection has no bias of its
  own; q and v get separate biases and k gets none (a zero bias, as in the reference).

The additive window mask (shifted windows, see `flaxzoo.layers.window.shifted_window_mask`) is
(windows, N, N) and broadcast over batch and heads. Nothing here knows about Swin stages, so
MAXIM-style or detection backbones can reuse it.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.attention import AttnImpl, check_attn_impl, dot_product_attention
from flaxzoo.layers.linear import Linear, param_init
from flaxzoo.layers.position import ContinuousPositionBias, RelativePositionBias
from flaxzoo.layers.window import Size2

# V2 clamps the learned temperature at 100 so logits stay bounded (reference: log(1 / 0.01)).
_MAX_LOGIT_SCALE = math.log(1.0 / 0.01)


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """x / max(||x||, eps) over the last axis (torch.nn.functional.normalize)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


class WindowAttention(nnx.Module):
    """Windowed multi-head attention with a relative position bias.

    Parameters (flaxzoo names): `qkv` (Linear dim -> 3*heads*head_dim, rows ordered
    (3, heads, head_dim)), `proj`, and either `rel_bias.relative_position_bias_table` (V1)
    or `cpb.fc1/fc2` + `logit_scale` + `q_bias`/`v_bias` (V2).
    """

    def __init__(self, dim: int, num_heads: int, window: Size2, *, cosine: bool = False, qkv_bias: bool = True,
                 head_dim: int | None = None, pretrained_window: Size2 = (0, 0),
                 proj_drop: float = 0.0, attn_impl: AttnImpl = "xla", dtype=None, rngs: nnx.Rngs):
        check_attn_impl("WindowAttention", attn_impl)
        self.attn_impl = attn_impl  # "fused": jax.nn.dot_product_attention (cuDNN on GPU in bf16), see attention.py
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.window = tuple(window)
        self.cosine = cosine
        attn_dim = self.num_heads * self.head_dim
        # V2 keeps the qkv matmul bias-free and adds (q_bias, 0, v_bias) itself.
        self.qkv = Linear(dim, 3 * attn_dim, use_bias=qkv_bias and not cosine, axes=("embed", "heads"),
                          dtype=dtype, rngs=rngs)
        if cosine:
            zeros = param_init(host_init.constant(0.0), ("heads",))
            self.q_bias = nnx.Param(zeros(rngs.params(), (attn_dim,), jnp.float32)) if qkv_bias else None
            self.v_bias = nnx.Param(zeros(rngs.params(), (attn_dim,), jnp.float32)) if qkv_bias else None
            log10 = param_init(host_init.constant(math.log(10.0)), ("heads",))
            self.logit_scale = nnx.Param(log10(rngs.params(), (num_heads,), jnp.float32))
            self.cpb = ContinuousPositionBias(self.window, num_heads, pretrained_window=tuple(pretrained_window),
                                              rngs=rngs)
        else:
            self.rel_bias = RelativePositionBias(self.window, num_heads, rngs=rngs)
        self.proj = Linear(attn_dim, dim, axes=("heads", "embed"), dtype=dtype, rngs=rngs)
        self.proj_drop = nnx.Dropout(proj_drop, rngs=rngs)

    def _qkv(self, x: jax.Array) -> jax.Array:
        qkv = self.qkv(x)
        if self.cosine and self.q_bias is not None:
            q_bias = self.q_bias[...]
            bias = jnp.concatenate([q_bias, jnp.zeros_like(q_bias), self.v_bias[...]])
            qkv = qkv + bias.astype(qkv.dtype)
        return qkv

    def __call__(self, x: jax.Array, mask: np.ndarray | jax.Array | None = None) -> jax.Array:
        """x: (B * nW, N, C) with N = window area; mask: (nW, N, N) additive, or None."""
        b_, n, _ = x.shape
        if n != self.window[0] * self.window[1]:
            raise ValueError(f"WindowAttention built for window {self.window} ({self.window[0] * self.window[1]} "
                             f"tokens) got {n} tokens per window.")
        qkv = self._qkv(x).reshape(b_, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B_, N, H, D)

        if self.cosine:
            q, k = _l2_normalize(q), _l2_normalize(k)
            scale = jnp.exp(jnp.minimum(self.logit_scale[...], _MAX_LOGIT_SCALE))[:, None, None]
            pos_bias = self.cpb()
        else:
            scale = self.head_dim ** -0.5
            pos_bias = self.rel_bias()
        bias = pos_bias  # (H, N, N)
        if mask is not None:
            num_windows = mask.shape[0]
            if b_ % num_windows:
                raise ValueError(f"{b_} windows in the batch is not a multiple of the mask's {num_windows}.")
            # Windows are batch-major: (B, nW) flattened, so the mask repeats every nW windows. Attending
            # over (B, nW, ...) lets the (nW, H, N, N) bias broadcast over images instead of being copied.
            bias = pos_bias[None] + jnp.asarray(mask, jnp.float32)[:, None]  # (nW, H, N, N)
            q, k, v = (t.reshape(b_ // num_windows, num_windows, *t.shape[1:]) for t in (q, k, v))

        out = dot_product_attention(q, k, v, scale=scale, bias=bias, impl=self.attn_impl)
        out = out.reshape(b_, n, self.num_heads * self.head_dim)
        return self.proj_drop(self.proj(out))
