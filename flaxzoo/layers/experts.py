"""Union of Experts: equitant expert decomposition and hierarchical routing.

An expert is a tensor-parallel shard of one dense layer (Yang et al. 2025): UoME's expert
e owns columns e*F/E:(e+1)*F/E of W1 and the same rows of W2, exactly the cut Megatron
uses, so all experts on all tokens *is* the dense MLP (with b2 = sum_e b2[e]). Expert
parameters are stacked with the logical axis `experts` first; the sharding rules map it
to the `model` mesh axis, so expert parallelism is tensor parallelism.

Routing, as the authors' released code does it (not the paper's prose):
  1. token choice: p = softmax(router(x)); every token marks its top-k experts (M);
     route = p*M / (sum(p*M) + eps) * scale, the sum over axis 0 of the input ("group",
     LM/LRA UoME and LM SMHA) or over experts ("experts", LRA SMHA);
  2. data selection: for each (expert, group) keep the `capacity` highest route scores
     along axis 1, positions sorted ascending (causal order); slots left over are filled
     with unchosen (score 0) positions;
  3. compute on the gathered rectangle (E, G, K, d) with one batched einsum, then
     scatter-add back. `faithful` mode adds unweighted (the router gets no gradient, as in
     the reference); `trained` mode multiplies by the token's renormalised top-k gate
     value and exposes a Switch load-balancing loss and a router z-loss.

The routing is a value, `RoutePlan`: `plan = layer.route(x)`, `y = layer(x, plan=plan)`.
Parity tests inject the routing recorded from the reference (torch's tie-break among
zero-score fillers cannot be reproduced; ours is lowest position first). Capacity is a
static Python int, so everything jits.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.grouped_experts import ExpertImpl, check_expert_impl, grouped_forward
from flaxzoo.layers.linear import Linear, default_kernel_init, expert_matmul, param_init
from flaxzoo.layers.mlp import gelu_exact
from flaxzoo.layers.probe import attached_probe

Mode = Literal["faithful", "trained"]
RouteNorm = Literal["group", "experts"]
MODES = ("faithful", "trained")


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class RoutePlan:
    """Which positions each expert processes, per group. E experts, G groups, N candidates, K slots.

    tokens:  (E, G, K) int32, distinct positions along axis 1 of the layer input: ascending for SMHA (its slot
             positions follow that order), in descending score order for the experts, whose rows are
             order-free (each is one token's MLP, and the union adds each position's rows in expert order).
    chosen:  (E, G, K) bool, True where the token chose the expert (False = filler slot).
    weights: (E, G, K) float, the combine weight (`trained` mode; ones in `faithful` mode).
    The router tensors (G, N, E) are kept for inspection (None when the plan was injected).
    """
    tokens: jax.Array
    chosen: jax.Array
    weights: jax.Array
    logits: jax.Array | None = None
    probs: jax.Array | None = None
    topk_mask: jax.Array | None = None
    route_scores: jax.Array | None = None
    balance_loss: jax.Array | None = None
    z_loss: jax.Array | None = None

    @property
    def num_experts(self) -> int:
        return self.tokens.shape[0]

    @property
    def capacity(self) -> int:
        return self.tokens.shape[-1]

    def load(self) -> jax.Array:
        """(E, G) number of tokens that chose each expert and were kept."""
        return self.chosen.sum(-1)

    def coverage(self, num_positions: int) -> jax.Array:
        """(G, N) how many experts process each position (fillers included)."""
        return scatter_add(jnp.ones(self.tokens.shape + (1,), jnp.int32), self.tokens, num_positions)[..., 0]

    @classmethod
    def inject(cls, tokens, chosen=None, weights=None) -> "RoutePlan":
        """A plan from recorded expert positions (E, G, K), e.g. the reference's routing."""
        tokens = jnp.asarray(tokens, jnp.int32)
        chosen = jnp.ones(tokens.shape, bool) if chosen is None else jnp.asarray(chosen, bool)
        weights = jnp.ones(tokens.shape, jnp.float32) if weights is None else jnp.asarray(weights)
        return cls(tokens=tokens, chosen=chosen, weights=weights)

    @classmethod
    def all_tokens(cls, num_experts: int, groups: int, num_positions: int) -> "RoutePlan":
        """No selection: every expert on every position (the layer then equals the dense one)."""
        tokens = jnp.broadcast_to(jnp.arange(num_positions, dtype=jnp.int32), (num_experts, groups, num_positions))
        return cls.inject(tokens)


class RouterLoss(nnx.Variable):
    """The last forward's weighted router auxiliary loss (trained mode); summed by `router_loss(model)`."""


def router_loss(model: nnx.Module) -> jax.Array:
    """Sum of every routed layer's auxiliary loss from the most recent forward pass (0 if none)."""
    total = jnp.zeros((), jnp.float32)
    for _, value in nnx.to_flat_state(nnx.state(model, RouterLoss)):
        total = total + value.get_value()
    return total


def gather_tokens(x: jax.Array, tokens: jax.Array) -> jax.Array:
    """x (G, N, ...) and tokens (E, G, K) -> (E, G, K, ...)."""
    group = jnp.arange(x.shape[0])[None, :, None]
    return x[group, tokens]


def scatter_add(y: jax.Array, tokens: jax.Array, num_positions: int) -> jax.Array:
    """y (E, G, K, ...) -> (G, N, ...): sum of every expert row landing on a position; untouched positions get 0."""
    groups = tokens.shape[1]
    group = jnp.arange(groups)[None, :, None]
    out = jnp.zeros((groups, num_positions) + y.shape[3:], y.dtype)
    return out.at[group, tokens].add(y)


def select_tokens(route_scores: jax.Array, capacity: int, *, ascending: bool = True
                  ) -> tuple[jax.Array, jax.Array]:
    """Data selection: per (expert, group) the `capacity` highest scores along axis 1, positions ascending
    (or, `ascending=False`, in descending score order: the same set without the reordering, which was 10-15% of
    the 64-wide UoE-LM's forward on a CPU).

    route_scores (G, N, E) -> tokens (E, G, K) int32, chosen (E, G, K) bool. Ties among
    zero-score fillers go to the lowest position (torch's order differs and is undocumented).
    """
    per_expert = jnp.moveaxis(route_scores, -1, 0)  # (E, G, N)
    _, picked = jax.lax.top_k(per_expert, capacity)
    tokens = ascending_positions(picked, per_expert.shape[-1]) if ascending else picked.astype(jnp.int32)
    return tokens, jnp.take_along_axis(per_expert, tokens, axis=-1) > 0


def ascending_positions(picked: jax.Array, num_positions: int) -> jax.Array:
    """(..., K) distinct positions in any order -> the same positions ascending, int32.

    A mark per position, its running count (the slot it goes to) and one scatter: half the time of
    argsort + two gathers on a 2-core CPU (BENCHMARKS.md, UoE profile), and the same result.
    """
    lead, k = picked.shape[:-1], picked.shape[-1]
    if k == 1:  # one position is in order (the dropless path's K = 1 plan: no scatter there)
        return picked.astype(jnp.int32)
    index = tuple(jnp.arange(n).reshape((-1,) + (1,) * (len(lead) - i)) for i, n in enumerate(lead))
    marked = jnp.zeros(lead + (num_positions,), jnp.int32).at[index + (picked,)].set(1)
    slot = jnp.where(marked > 0, jnp.cumsum(marked, axis=-1) - 1, k)  # k: out of range, dropped below
    positions = jnp.broadcast_to(jnp.arange(num_positions, dtype=jnp.int32), marked.shape)
    return jnp.zeros(lead + (k,), jnp.int32).at[index + (slot,)].set(positions, mode="drop")


def reference_capacity(route_scores) -> int:
    """The reference SMHA's data-dependent K: the largest number of positions choosing one (expert, group).

    Needs concrete values (not jittable); pass it as `layer.route(x, capacity=...)` to route as the
    reference does outside jit.
    """
    return int(jnp.max(jnp.sum(jnp.asarray(route_scores) > 0, axis=1)))


def static_capacity(capacity: float, num_positions: int) -> int:
    """K = int(capacity * N), at least 1 and at most N (the reference's int(0.5 * N) for capacity 0.5)."""
    return max(1, min(num_positions, int(capacity * num_positions)))


def top_k_mask(probs: jax.Array, k: int) -> jax.Array:
    """Boolean mask of each row's k largest entries (ties to the lower index, as `jax.lax.top_k`).

    k rounds of argmax: for the few experts a token picks from this is elementwise work XLA fuses,
    where `top_k` is a custom call per layer that cost more than the routing it serves.
    """
    mask = jnp.zeros(probs.shape, jnp.bool_)
    experts = jnp.arange(probs.shape[-1])
    for _ in range(k):
        best = jnp.argmax(jnp.where(mask, -jnp.inf, probs), axis=-1)
        mask = mask | (experts == best[..., None])
    return mask


class Router(nnx.Module):
    """Token-choice top-k gate with the reference's score normalisation (see module docstring)."""

    def __init__(self, dim: int, num_experts: int, top_k: int, *, norm: RouteNorm = "group", eps: float = 1e-8,
                 scale: float = 1.0, rngs: nnx.Rngs):
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}.")
        if norm not in ("group", "experts"):
            raise ValueError(f"Router norm must be 'group' or 'experts', got {norm!r}.")
        self.num_experts, self.top_k, self.norm, self.eps, self.scale = num_experts, top_k, norm, eps, scale
        # Replicated on purpose (no `experts` name): it is tiny and every token needs all E scores.
        self.gate = Linear(dim, num_experts, axes=("embed", None), rngs=rngs)

    def scores(self, x: jax.Array) -> dict[str, jax.Array]:
        """x (G, N, d) -> logits, probs, topk_mask, route_scores, each (G, N, E), float32."""
        logits = self.gate(x).astype(jnp.float32)
        probs = jax.nn.softmax(logits, axis=-1)
        mask = top_k_mask(probs, self.top_k)
        masked = jnp.where(mask, probs, 0.0)
        if self.norm == "group":  # the reference sums over axis 0 of its input and scales by int(cap * N0)
            route = masked / (masked.sum(0, keepdims=True) + self.eps) * int(self.scale * x.shape[0])
        else:
            route = masked / (masked.sum(-1, keepdims=True) + self.eps) * self.scale
        return dict(logits=logits, probs=probs, topk_mask=mask, route_scores=route)

    def __call__(self, x: jax.Array, capacity: int, *, weighted: bool = False, ascending: bool = True) -> RoutePlan:
        s = self.scores(x)
        tokens, chosen = select_tokens(s["route_scores"], capacity, ascending=ascending)
        if weighted:
            # A token's weight for an expert is its top-k gate value renormalised over its k experts.
            masked = jnp.where(s["topk_mask"], s["probs"], 0.0)
            gate = masked / masked.sum(-1, keepdims=True)
            weights = jnp.take_along_axis(jnp.moveaxis(gate, -1, 0), tokens, axis=-1) * chosen
        else:
            weights = jnp.ones(tokens.shape, jnp.float32)
        # Switch load balancing: E * sum_e (fraction of token choices for e) * (mean prob of e).
        frac = s["topk_mask"].astype(jnp.float32).mean((0, 1)) / self.top_k
        balance = self.num_experts * jnp.sum(frac * s["probs"].mean((0, 1)))
        z = jnp.mean(jax.nn.logsumexp(s["logits"], axis=-1) ** 2)
        return RoutePlan(tokens=tokens, chosen=chosen, weights=weights, balance_loss=balance, z_loss=z, **s)


def combine(layer, y: jax.Array, plan: RoutePlan, num_positions: int) -> jax.Array:
    """Union of expert rows: unweighted (faithful) or gate-weighted with the router loss recorded (trained)."""
    if layer.mode == "trained":
        y = y * plan.weights[..., None].astype(y.dtype)
        if plan.balance_loss is not None:
            layer.router_loss.set_value(layer.balance_coef * plan.balance_loss + layer.z_coef * plan.z_loss)
    return scatter_add(y, plan.tokens, num_positions)


def expert_param(rngs: nnx.Rngs, shape, axes, init=default_kernel_init, dtype=jnp.float32) -> nnx.Param:
    return nnx.Param(param_init(init, axes)(rngs.params(), shape, dtype))


class UoME(nnx.Module):
    """Union of MLP Experts: a dense MLP cut into E column/row blocks, each a routed expert.

    Input (G, N, d): routing groups along axis 0 (normally the batch), candidate positions along
    axis 1 (normally the sequence). `capacity` is the fraction of N each expert keeps (static);
    the default top_k / num_experts is a capacity factor of 1 (the reference's 0.5 for top-2 of 4).
    `expert_impl="grouped"` computes the same union with grouped GEMMs over rows sorted by expert, and
    `dropless=True` (grouped only) keeps every token's top-k experts instead of a static K: see
    `flaxzoo.layers.grouped_experts` for when each equals the capacity path.
    """

    def __init__(self, dim: int, hidden_dim: int, num_experts: int = 4, top_k: int = 2, *,
                 capacity: float | None = None, mode: Mode = "faithful", route_norm: RouteNorm = "group",
                 route_eps: float = 1e-8, route_scale: float = 1.0, act: Callable = gelu_exact,
                 balance_coef: float = 1e-2, z_coef: float = 1e-3, dtype=None, param_dtype=jnp.float32,
                 expert_impl: ExpertImpl = "capacity", dropless: bool = False, rngs: nnx.Rngs):
        check_expert_impl("UoME", expert_impl, dropless)
        self.expert_impl, self.dropless = expert_impl, dropless
        if hidden_dim % num_experts:
            raise ValueError(f"UoME hidden_dim {hidden_dim} must be divisible by num_experts {num_experts} "
                             f"(each expert owns an equal block of columns).")
        if mode not in MODES:
            raise ValueError(f"UoME mode must be one of {MODES}, got {mode!r}.")
        self.num_experts, self.mode, self.act, self.dtype = num_experts, mode, act, dtype
        self.capacity = top_k / num_experts if capacity is None else capacity
        self.balance_coef, self.z_coef = balance_coef, z_coef
        fe = hidden_dim // num_experts
        self.router = Router(dim, num_experts, top_k, norm=route_norm, eps=route_eps, scale=route_scale, rngs=rngs)
        zeros = host_init.constant(0.0)  # host-sampled: no compile per shape
        self.w1 = expert_param(rngs, (num_experts, dim, fe), ("experts", "embed", "mlp"), dtype=param_dtype)
        self.b1 = expert_param(rngs, (num_experts, fe), ("experts", "mlp"), zeros, param_dtype)
        self.w2 = expert_param(rngs, (num_experts, fe, dim), ("experts", "mlp", "embed"), dtype=param_dtype)
        self.b2 = expert_param(rngs, (num_experts, dim), ("experts", "embed"), zeros, param_dtype)
        self.router_loss = RouterLoss(jnp.zeros((), jnp.float32))

    def route(self, x: jax.Array, capacity: int | None = None) -> RoutePlan:
        """The routing for x; `capacity` (a Python int) overrides the layer's static K."""
        k = static_capacity(self.capacity, x.shape[1]) if capacity is None else capacity
        # The experts' rows are order-free: no reordering of the chosen positions (see RoutePlan.tokens).
        return self.router(x, k, weighted=self.mode == "trained", ascending=False)

    def expert_hidden(self, x: jax.Array, plan: RoutePlan) -> jax.Array:
        """(E, G, K, F/E): each expert's hidden activations (after the nonlinearity) on its selected positions."""
        dtype = self.dtype or x.dtype
        xe = gather_tokens(x.astype(dtype), plan.tokens)  # (E, G, K, d)
        h = expert_matmul(xe, self.w1[...].astype(dtype)) + self.b1[...].astype(dtype)[:, None, None]
        return self.act(h)

    def project_hidden(self, h: jax.Array) -> jax.Array:
        """(E, G, K, F/E) hidden -> (E, G, K, d) expert output rows."""
        dtype = h.dtype
        return expert_matmul(h, self.w2[...].astype(dtype)) + self.b2[...].astype(dtype)[:, None, None]

    def expert_outputs(self, x: jax.Array, plan: RoutePlan) -> jax.Array:
        """(E, G, K, d): each expert's output rows for its selected positions, before weighting and union."""
        return self.project_hidden(self.expert_hidden(x, plan))

    def dense_hidden(self, h: jax.Array, plan: RoutePlan, num_positions: int) -> jax.Array:
        """(E, G, K, F/E) -> (G, N, F): the dense layer's hidden layer, experts side by side, 0 where unrouted."""
        e, g, _, fe = h.shape
        out = jnp.zeros((g, num_positions, e, fe), h.dtype)
        group = jnp.arange(g)[None, :, None]
        expert = jnp.arange(e)[:, None, None]
        return out.at[group, plan.tokens, expert].set(h).reshape(g, num_positions, e * fe)

    def __call__(self, x: jax.Array, *, plan: RoutePlan | None = None) -> jax.Array:
        if plan is None:
            # dropless uses only the router's scores and losses: K = 1 keeps the unused selection cheap
            plan = self.route(x, capacity=1 if self.dropless else None)
        if self.expert_impl == "grouped":
            return grouped_forward(self, x, plan)  # refuses an attached probe (not wired to grouped rows yet)
        probe = attached_probe(self)
        if probe is None:
            return combine(self, self.expert_outputs(x, plan), plan, x.shape[1])
        # Probe (layers/probe.py): capture the dense-equivalent hidden layer; steer as the dense layer would,
        # i.e. the vector goes through every expert's W2 block at every position (unweighted, routed or not).
        h = self.expert_hidden(x, plan)
        probe.record(self.dense_hidden(h, plan, x.shape[1]))
        y = combine(self, self.project_hidden(h), plan, x.shape[1])
        e, _, fe = self.w1[...].shape
        delta = jnp.einsum("ef,efd->d", probe.delta().reshape(e, fe).astype(y.dtype), self.w2[...].astype(y.dtype))
        return y + delta

    def dense_params(self) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """The equivalent dense MLP (w1 (d, F), b1 (F,), w2 (F, d), b2 (d,)): concatenated blocks, summed biases."""
        w1, b1, w2, b2 = (p[...] for p in (self.w1, self.b1, self.w2, self.b2))
        e, d, fe = w1.shape
        return (w1.transpose(1, 0, 2).reshape(d, e * fe), b1.reshape(e * fe), w2.reshape(e * fe, d), b2.sum(0))
