"""Multi-head attention core shared by Swin windows, UoE SMHA and anything else.

Layout (batch, length, heads, head_dim) as `jax.nn.dot_product_attention`. Logits and
softmax run in float32 whatever the compute dtype, like every reference we match.

Two implementations behind one call (`impl`):
- "xla": the einsum / softmax / einsum written out here (the default; what the goldens were
  matched with);
- "fused": `jax.nn.dot_product_attention`. On a GPU with bf16/fp16 inputs it asks for cuDNN's
  fused kernel (bias and mask included) and falls back to jax's XLA version where cuDNN refuses
  the shapes; elsewhere it is jax's XLA version. jax 0.10.2's `implementation=None` always picks
  XLA (a TODO in jax), so the cuDNN request is made here.
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

AttnImpl = Literal["xla", "fused"]
ATTN_IMPLS = ("xla", "fused")


def check_attn_impl(owner: str, attn_impl: str) -> None:
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f"{owner} attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}.")


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, scale: float | jax.Array | None = None,
                          bias: jax.Array | None = None, mask: jax.Array | None = None,
                          precision=None, impl: AttnImpl = "xla") -> jax.Array:
    """softmax(scale * q k^T + bias [masked]) v.

    q: (*B, Lq, H, D), k/v: (*B, Lk, H, D), any number of leading batch axes (Swin passes (batch, windows)
    so that its (windows, H, N, N) mask broadcasts instead of being copied per image). `bias` broadcasts
    to (*B, H, Lq, Lk) and is added
    (relative position bias, additive window mask). `mask` is boolean, True = attend; masked
    logits get the dtype's lowest value so a fully masked row gives a uniform distribution
    instead of NaN. `scale` may be an array broadcasting to (H, 1, 1) (Swin V2's per-head scale).
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if impl == "fused":
        return fused_attention(q, k, v, scale=scale, bias=bias, mask=mask)
    # Heads move next to the batch before the two matmuls: XLA:CPU runs "bhqd,bhkd" as one
    # batched GEMM over (b, h), while "bqhd,bkhd" made it pick a strided layout that cost 4x on
    # Swin's 49-token windows (profile in BENCHMARKS.md). Same products, same sums.
    q, k, v = (jnp.swapaxes(t, -3, -2) for t in (q, k, v))  # (*B, H, L, D)
    return jnp.swapaxes(attend(q, k, v, scale=scale, bias=bias, mask=mask, precision=precision), -3, -2)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, *, scale: float | jax.Array, bias: jax.Array | None = None,
           mask: jax.Array | None = None, precision=None) -> jax.Array:
    """softmax(scale * q k^T + bias [masked]) v over (*B, L, D) operands: every leading axis is a batch
    axis (heads included), so the two matmuls are plain batched GEMMs. `bias` and `mask` broadcast
    to (*B, Lq, Lk); see `dot_product_attention` for their meaning."""
    # float32 at least (bf16/fp16 inputs), float64 kept when running in x64 mode.
    softmax_dtype = jnp.promote_types(q.dtype, jnp.float32)
    if isinstance(scale, (int, float)):
        # A float scale goes on q, as timm and the PyTorch references apply it; on the logits XLA:CPU
        # materialised it as a full (B, H, L, L) array for every attention.
        q = q * jnp.asarray(scale, q.dtype)
        scale = None
    logits = jnp.einsum("...qd,...kd->...qk", q, k, precision=precision).astype(softmax_dtype)
    if scale is not None:  # an array (V2's per-head temperature) multiplies the logits
        logits = logits * scale
    if bias is not None:
        logits = logits + bias.astype(softmax_dtype)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(softmax_dtype).min)
    probs = softmax(logits).astype(v.dtype)
    return jnp.einsum("...qk,...kd->...qd", probs, v, precision=precision)


@jax.custom_jvp
def softmax(x: jax.Array) -> jax.Array:
    """`jax.nn.softmax(x, axis=-1)`, the same values, with the derivative written in terms of the output.

    jax 0.10's default softmax (`jax_softmax_custom_jvp` is off) is differentiated through its exp, sum and
    division: the backward keeps exp(x - max) and the row sums and spends several passes over each
    (..., L, L) array. Here the tangent is y * (t - sum(y * t)), which needs only y (Swin-T's CPU training
    step: see BENCHMARKS.md)."""
    e = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


@softmax.defjvp
def _softmax_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = softmax(x)
    return y, y * (t - jnp.sum(y * t, axis=-1, keepdims=True))


def _as_4d(t: jax.Array | None) -> jax.Array | None:
    return None if t is None else jnp.reshape(t, (1,) * (4 - t.ndim) + t.shape)


def fused_attention(q, k, v, *, scale, bias=None, mask=None) -> jax.Array:
    """`jax.nn.dot_product_attention`, cuDNN where it applies (see the module docstring)."""
    if q.ndim > 4:  # jax's API takes one batch axis: fold the leading ones, broadcasting bias/mask to them
        lead, lq, lk = q.shape[:-3], q.shape[-3], k.shape[-3]
        full = lead + (q.shape[-2], lq, lk)
        fold = lambda t: None if t is None else jnp.broadcast_to(t, full).reshape((-1,) + full[-3:])
        out = fused_attention(*(t.reshape((-1,) + t.shape[-3:]) for t in (q, k, v)), scale=scale,
                              bias=fold(bias), mask=fold(mask))
        return out.reshape(q.shape[:-1] + v.shape[-1:])
    if not isinstance(scale, (int, float)):
        # A per-head scale (H, 1, 1) is not a float jax's API takes: fold it into q (in q's dtype).
        q = q * jnp.reshape(jnp.asarray(scale), (1, 1, -1, 1)).astype(q.dtype)
        scale = 1.0
    bias, mask = _as_4d(bias), _as_4d(mask)
    if mask is not None:
        mask = mask.astype(bool)
    if jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16):
        try:  # cuDNN wants the bias in the inputs' dtype and refuses some shapes at trace time
            return jax.nn.dot_product_attention(q, k, v, None if bias is None else bias.astype(q.dtype), mask,
                                                scale=float(scale), implementation="cudnn")
        except (ValueError, NotImplementedError, RuntimeError):
            pass
    return jax.nn.dot_product_attention(q, k, v, bias, mask, scale=float(scale), implementation="xla")
