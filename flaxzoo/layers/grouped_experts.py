"""The grouped-matmul path of UoME (`expert_impl="grouped"`): rows sorted by expert, `jax.lax.ragged_dot`.

The capacity path (experts.py) computes a dense (E, G, K) rectangle: every expert runs on its K
slots, fillers included, then scatter-adds back. This path computes a list of (position, expert)
rows instead, sorted by expert so that one grouped GEMM (`ragged_dot`, group sizes = rows per
expert) does all experts at once. Two row sets:

* from the capacity plan (`dropless=False`): the plan's (expert, group, slot) entries. Same routing,
  same capacity, so it keeps and drops exactly the tokens the capacity path does. In `faithful`
  mode every slot counts (fillers are added unweighted, as the reference does), so all E*G*K rows
  run; in `trained` mode fillers weigh 0 and are moved behind the groups, so the GEMM skips them
  where the backend can (GPU/TPU kernels stop at the group sizes). The union is a scatter-add onto
  the positions, like the capacity path's. Equal to the capacity path in both modes, at every
  capacity and for injected plans (up to float summation order).
* dropless (`dropless=True`): every token's top-k experts, G*N*top_k rows, nothing dropped and no
  fillers. The positions' rows are permuted with a gather whose backward is the inverse gather,
  so neither pass has a scatter. In `trained` mode with capacity 1.0 (nothing dropped) it equals
  the capacity path. It differs from the capacity path (i) where, at capacity < 1, more than K
  positions of a group chose one expert: the capacity path keeps only the K highest route scores,
  the dropless path keeps them all; (ii) in `faithful` mode, where the capacity path also adds
  the unchosen filler slots unweighted and the dropless path has none. It needs the router's
  top-k mask, so it cannot run on an injected plan.

`ragged_dot` has a native lowering on GPU (XLA's ragged dot or a Triton kernel) and TPU; on CPU
jax lowers it to a dense (E, M, d) masked matmul, E times the work: keep `capacity` on CPU.
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

ExpertImpl = Literal["capacity", "grouped"]
EXPERT_IMPLS = ("capacity", "grouped")


def check_expert_impl(owner: str, expert_impl: str, dropless: bool) -> None:
    if expert_impl not in EXPERT_IMPLS:
        raise ValueError(f"{owner} expert_impl must be one of {EXPERT_IMPLS}, got {expert_impl!r}.")
    if dropless and expert_impl != "grouped":
        raise ValueError(f"{owner} dropless=True needs expert_impl='grouped' (the capacity path has a static K).")


@jax.custom_vjp
def permute_rows(x: jax.Array, order: jax.Array, inverse: jax.Array) -> jax.Array:
    """x[order] for a permutation `order` with inverse `inverse`; the backward is g[inverse] (a gather, no scatter)."""
    return x[order]


def _permute_fwd(x, order, inverse):
    return x[order], inverse


def _permute_bwd(inverse, g):
    return g[inverse], None, None


permute_rows.defvjp(_permute_fwd, _permute_bwd)


def sort_by_expert(expert: jax.Array, active: jax.Array, num_experts: int):
    """Stable order putting active rows first, grouped by expert; (order, inverse, group sizes (E,) int32)."""
    key = jnp.where(active, expert, num_experts)  # inactive rows sort behind every group
    order = jnp.argsort(key, stable=True).astype(jnp.int32)
    inverse = jnp.argsort(order).astype(jnp.int32)
    sizes = jnp.sum(jax.nn.one_hot(key, num_experts, dtype=jnp.int32), axis=0)  # the sentinel E is all-zero
    return order, inverse, sizes


def expert_rows(layer, xs: jax.Array, expert: jax.Array, sizes: jax.Array) -> jax.Array:
    """Rows (M, d) sorted by expert -> each row's expert output (M, d): two grouped GEMMs around the activation.

    Rows past sum(sizes) come out as act(b1) @ 0 + b2 of their (clipped) expert; callers weight them 0.
    """
    dtype = xs.dtype
    w1, b1 = layer.w1[...].astype(dtype), layer.b1[...].astype(dtype)
    w2, b2 = layer.w2[...].astype(dtype), layer.b2[...].astype(dtype)
    # Biases through a one-hot matmul rather than b[expert]: the gather's gradient would be a scatter-add.
    onehot = jax.nn.one_hot(expert, w1.shape[0], dtype=dtype)
    h = jax.lax.ragged_dot(xs, w1, sizes, preferred_element_type=dtype) + onehot @ b1
    h = layer.act(h)  # the hidden activations: the same point as the capacity path's act(h)
    return jax.lax.ragged_dot(h, w2, sizes, preferred_element_type=dtype) + onehot @ b2


def record_router_loss(layer, plan) -> None:
    """As `experts.combine`: trained mode stores the weighted auxiliary loss of this forward."""
    if layer.mode == "trained" and plan.balance_loss is not None:
        layer.router_loss.set_value(layer.balance_coef * plan.balance_loss + layer.z_coef * plan.z_loss)


def grouped_from_plan(layer, x: jax.Array, plan) -> jax.Array:
    """The capacity plan's rows through grouped GEMMs; x (G, N, d) -> (G, N, d)."""
    dtype = layer.dtype or x.dtype
    e, g, k = plan.tokens.shape
    n = x.shape[1]
    position = (jnp.arange(g, dtype=jnp.int32)[None, :, None] * n + plan.tokens).reshape(-1)  # (E*G*K,)
    expert = jnp.broadcast_to(jnp.arange(e, dtype=jnp.int32)[:, None, None], (e, g, k)).reshape(-1)
    if layer.mode == "trained":
        weight = plan.weights.reshape(-1)
        active = weight != 0  # zero-weight rows (fillers) add nothing: leave them out of the groups
    else:
        weight = jnp.ones(position.shape, jnp.float32)  # faithful: unweighted union, fillers included
        active = jnp.ones(position.shape, bool)
    order, _, sizes = sort_by_expert(expert, active, e)
    rows = position[order]
    xs = x.reshape(g * n, -1).astype(dtype)[rows]
    ys = expert_rows(layer, xs, expert[order], sizes)
    ys = ys * jnp.where(active, weight, 0).astype(ys.dtype)[order][:, None]
    record_router_loss(layer, plan)
    return jax.ops.segment_sum(ys, rows, num_segments=g * n).reshape(g, n, -1)


def topk_experts(topk_mask: jax.Array, top_k: int) -> jax.Array:
    """(G, N, E) boolean top-k mask -> (G, N, top_k) expert ids, ascending."""
    return jnp.argsort(~topk_mask, axis=-1, stable=True)[..., :top_k].astype(jnp.int32)


def grouped_dropless(layer, x: jax.Array, plan) -> jax.Array:
    """Every token's top-k experts, no capacity; x (G, N, d) -> (G, N, d). Scatter-free forward and backward."""
    if plan.topk_mask is None:
        raise ValueError("UoME dropless=True routes from the router's top-k choices; an injected RoutePlan has "
                         "none. Use dropless=False (the plan's rows) or let the layer route.")
    dtype = layer.dtype or x.dtype
    g, n, d = x.shape
    top_k = layer.router.top_k
    expert = topk_experts(plan.topk_mask, top_k).reshape(-1)  # (G*N*top_k,), token-major
    if layer.mode == "trained":  # the token's gate renormalised over its k experts, as the capacity path
        masked = jnp.where(plan.topk_mask, plan.probs, 0.0)
        gate = masked / masked.sum(-1, keepdims=True)
        onehot = jax.nn.one_hot(expert.reshape(g, n, top_k), layer.num_experts, dtype=gate.dtype)
        weight = jnp.einsum("gne,gnke->gnk", gate, onehot).reshape(-1)  # a take_along_axis would scatter in grad
    else:
        weight = jnp.ones(expert.shape, jnp.float32)
    order, inverse, sizes = sort_by_expert(expert, jnp.ones(expert.shape, bool), layer.num_experts)
    # Each position repeated top_k times (backward: a sum over the copies), then sorted by expert.
    xs = permute_rows(jnp.repeat(x.reshape(g * n, d).astype(dtype), top_k, axis=0), order, inverse)
    ys = expert_rows(layer, xs, expert[order], sizes) * permute_rows(weight, order, inverse).astype(dtype)[:, None]
    record_router_loss(layer, plan)
    return permute_rows(ys, inverse, order).reshape(g, n, top_k, d).sum(2)


def grouped_forward(layer, x: jax.Array, plan) -> jax.Array:
    """UoME's `expert_impl="grouped"` union (see the module docstring for the two row sets)."""
    if getattr(layer, "probe", None) is not None:
        # A capture/steering probe (flaxzoo.layers.probe) reads the dense-layout hidden layer of the capacity
        # path; the grouped rows are not wired to it yet, and skipping it silently would lose the capture.
        raise ValueError("This UoME layer has a probe attached (capture or steering), which runs on "
                         "expert_impl='capacity'; set layer.expert_impl = 'capacity' (and dropless = False) "
                         "or build the model with expert_impl='capacity'.")
    return grouped_dropless(layer, x, plan) if layer.dropless else grouped_from_plan(layer, x, plan)
