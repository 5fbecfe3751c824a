"""Selective Multi-Head Attention (SMHA): every attention head is a routed expert.

Head e owns the columns of W_q, W_k, W_v for its head and the rows of W_o, plus its own
output bias (the equitant decomposition of multi-head attention). Each head attends only
among the K positions it selected (a K x K score matrix per head and group), and the heads'
outputs are scatter-added back. With every head on every token it is standard MHA.

Two reference variants, chosen by flags:
  * LRA (`pre_rotation=True`): the input itself is rotated before routing (per head slice
    [a | c] -> [rot(c) | a], `lra_pre_rotation`), non-causal, additive key mask -1e6.
  * LM (`causal=True, rope="slot"`): rotate-half RoPE on q and k at the slot index 0..K-1
    (not the token position) and a causal mask over slots, valid because slots are in
    ascending token order. `rope="token"` uses the token positions instead (our option).

Per-head parameters are stored fused as qkv (E, d, 3*dh) with per-head layout [q | k | v]
and out (E, dh, d), `experts` first.
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.attention import attend
from flaxzoo.layers.experts import (MODES, Mode, RouteNorm, RoutePlan, Router, RouterLoss, combine, expert_param,
                                    gather_tokens, static_capacity)
from flaxzoo.layers.linear import expert_matmul

Rope = Literal["slot", "token"] | None


def lra_pre_rotation(x: jax.Array, num_heads: int, theta: float = 10000.0) -> jax.Array:
    """The LRA SMHA's rotation of its input (B, L, d) at positions 0..L-1, before routing.

    Per head slice [a | c] (halves of dh): c is read as dh/4 complex numbers c[2i] + i c[2i+1],
    multiplied by exp(i t theta_i) with theta_i = theta^(-2i/(dh/2)); the slice becomes [rot(c) | a].
    """
    b, length, d = x.shape
    dh = d // num_heads
    half = dh // 2
    freqs = 1.0 / (theta ** (np.arange(0, half, 2)[: half // 2].astype(np.float32) / half))
    angles = np.outer(np.arange(length, dtype=np.float32), freqs).astype(np.float32)  # (L, dh/4)
    cos, sin = jnp.asarray(np.cos(angles))[:, None], jnp.asarray(np.sin(angles))[:, None]
    heads = x.reshape(b, length, num_heads, dh)
    a, c = heads[..., :half], heads[..., half:]
    re, im = c[..., 0::2], c[..., 1::2]
    rot = jnp.stack([re * cos - im * sin, re * sin + im * cos], axis=-1).reshape(c.shape)
    return jnp.concatenate([rot, a], axis=-1).reshape(b, length, d)


def rope_tables(positions, dim: int, theta: float = 10000.0) -> tuple:
    """cos and sin of rotate-half RoPE's angles at integer positions (...) -> each (..., dim / 2).

    Computed once per attention, at the positions' own shape, and shared by q and k: broadcast to
    (experts, groups, K, dim), XLA fused cos and sin into the rotations and evaluated them again for
    every element of q and k (0.8 ms of UoE-LM tiny's 6 ms forward at 128 tokens on the 2-core CPU).
    Static positions (a numpy array: the slot RoPE) give numpy constants; traced ones are kept apart
    from the rotations by a barrier."""
    if isinstance(positions, np.ndarray):
        inv_freq = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))
        ang = positions[..., None].astype(np.float32) * inv_freq.astype(np.float32)
        return np.cos(ang), np.sin(ang)
    inv_freq = 1.0 / (theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
    ang = positions[..., None].astype(jnp.float32) * inv_freq
    return jax.lax.optimization_barrier((jnp.cos(ang), jnp.sin(ang)))


def apply_rope(u: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half RoPE of u (..., K, dh) with `rope_tables` broadcastable to (..., K, dh / 2)."""
    half = u.shape[-1] // 2
    u1, u2 = u[..., :half], u[..., half:]
    return jnp.concatenate([u1 * cos - u2 * sin, u2 * cos + u1 * sin], axis=-1).astype(u.dtype)


def rotate_half_rope(u: jax.Array, positions: jax.Array, theta: float = 10000.0) -> jax.Array:
    """Rotate-half RoPE: u (..., K, dh) at integer positions broadcastable to (..., K)."""
    return apply_rope(u, *rope_tables(positions, u.shape[-1], theta))


class SMHA(nnx.Module):
    """Selective multi-head attention. Input (G, N, d): groups (batch) on axis 0, positions on axis 1.

    `capacity` is the static fraction of positions each head keeps (default top_k / num_heads).
    The reference's SMHA capacity is data dependent (the largest chosen count, dropless); pass
    capacity=1.0 for a dropless static equivalent, or inject a plan.
    """

    def __init__(self, dim: int, num_heads: int, top_k: int | None = None, *, capacity: float | None = None,
                 causal: bool = False, rope: Rope = None, pre_rotation: bool = False, rope_theta: float = 10000.0,
                 mode: Mode = "faithful", route_norm: RouteNorm = "group", route_eps: float = 1e-8,
                 route_scale: float = 1.0, balance_coef: float = 1e-2, z_coef: float = 1e-3, dtype=None,
                 param_dtype=jnp.float32, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"SMHA dim {dim} must be divisible by num_heads {num_heads}.")
        if mode not in MODES:
            raise ValueError(f"SMHA mode must be one of {MODES}, got {mode!r}.")
        if rope not in (None, "slot", "token"):
            raise ValueError(f"SMHA rope must be None, 'slot' or 'token', got {rope!r}.")
        top_k = num_heads // 2 if top_k is None else top_k  # the LM reference hard-codes H // 2
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.capacity = top_k / num_heads if capacity is None else capacity
        self.causal, self.rope, self.pre_rotation, self.rope_theta = causal, rope, pre_rotation, rope_theta
        self.mode, self.dtype = mode, dtype
        self.balance_coef, self.z_coef = balance_coef, z_coef
        dh = self.head_dim
        zeros = host_init.constant(0.0)  # host-sampled: no compile per shape
        self.router = Router(dim, num_heads, top_k, norm=route_norm, eps=route_eps, scale=route_scale, rngs=rngs)
        self.qkv = expert_param(rngs, (num_heads, dim, 3 * dh), ("experts", "embed", "kv"), dtype=param_dtype)
        self.qkv_bias = expert_param(rngs, (num_heads, 3 * dh), ("experts", "kv"), zeros, param_dtype)
        self.out = expert_param(rngs, (num_heads, dh, dim), ("experts", "kv", "embed"), dtype=param_dtype)
        self.out_bias = expert_param(rngs, (num_heads, dim), ("experts", "embed"), zeros, param_dtype)
        self.router_loss = RouterLoss(jnp.zeros((), jnp.float32))

    def router_input(self, x: jax.Array) -> jax.Array:
        """What the router and the projections see (the LRA variant rotates its input first)."""
        return lra_pre_rotation(x, self.num_heads, self.rope_theta) if self.pre_rotation else x

    def route(self, x: jax.Array, capacity: int | None = None) -> RoutePlan:
        """The routing for x; `capacity` (a Python int) overrides the static K (see `reference_capacity`)."""
        k = static_capacity(self.capacity, x.shape[1]) if capacity is None else capacity
        return self.router(self.router_input(x), k, weighted=self.mode == "trained")

    def expert_outputs(self, x: jax.Array, plan: RoutePlan, mask: jax.Array | None = None) -> jax.Array:
        """(E, G, K, d): each head's output rows for its selected positions, before weighting and union."""
        xr = self.router_input(x)
        dtype = self.dtype or x.dtype
        dh = self.head_dim
        xe = gather_tokens(xr.astype(dtype), plan.tokens)  # (E, G, K, d)
        qkv = expert_matmul(xe, self.qkv[...].astype(dtype)) + self.qkv_bias[...].astype(dtype)[:, None, None]
        q, k, v = (qkv[..., i * dh:(i + 1) * dh] for i in range(3))
        if self.rope is not None:
            slots = plan.tokens if self.rope == "token" else np.arange(plan.capacity)
            cos, sin = rope_tables(slots, dh, self.rope_theta)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        bias = None
        if mask is not None:
            key_mask = gather_tokens(jnp.asarray(mask, jnp.float32), plan.tokens)  # (E, G, K)
            bias = (-1e6 * (1.0 - key_mask))[:, :, None, :]  # (E, G, 1 query, K)
        causal = jnp.tril(jnp.ones((plan.capacity, plan.capacity), bool)) if self.causal else None
        # (E, G) are the attention's batch axes and each expert is its own single head: no head axis,
        # no transposes (with a size-1 head axis XLA:CPU laid out the softmax backward's reductions badly:
        # 2.6x their time in UoE-LM tiny's training step, BENCHMARKS.md).
        o = attend(q, k, v, scale=dh ** -0.5, bias=bias, mask=causal)  # (E, G, K, dh)
        return expert_matmul(o, self.out[...].astype(dtype)) + self.out_bias[...].astype(dtype)[:, None, None]

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None, plan: RoutePlan | None = None) -> jax.Array:
        """x (G, N, d); mask (G, N), 1 = real token (padding keys get -1e6, as the reference)."""
        if plan is None:
            plan = self.route(x)
        return combine(self, self.expert_outputs(x, plan, mask), plan, x.shape[1])
