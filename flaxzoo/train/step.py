"""The jitted training step, shared by every task.

NNX modules are split once into a static graph definition and array state; the step
is a plain `jax.jit` over that state (merging the module inside), which costs far less
per step than `nnx.jit` and needs no NNX transform machinery (MaxText does the same).

Inside one step: gradient accumulation over micro-batches (`lax.scan`), a divergence guard
(an update with a non-finite loss or gradient norm is never applied, one that makes the
parameters non-finite is flagged; the first bad step is recorded in the state for the host to
read at its next log point, so there is no extra host sync per step) and an exponential moving
average of the parameters.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

# loss_fn(model, batch, rng) -> (scalar loss, {metric name: scalar})
LossFn = Callable[[nnx.Module, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]

# Bits of `TrainState.bad_what`: which quantity went non-finite at `bad_step`.
NONFINITE = {1: "loss", 2: "gradient norm", 4: "parameters after the update"}


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """Everything a step reads and writes: parameters, other module state, optimizer state, step counter."""
    params: nnx.State
    rest: nnx.State  # non-parameter module state (RNG counters, batch stats, ...)
    opt_state: optax.OptState
    step: jax.Array
    ema: nnx.State | None  # moving average of params (None when config.ema_decay == 0)
    bad_step: jax.Array  # first step whose loss/gradients/update were non-finite (0 = none)
    bad_what: jax.Array  # NONFINITE bits for that step
    graphdef: nnx.GraphDef = dataclasses.field(metadata=dict(static=True))
    tx: optax.GradientTransformation = dataclasses.field(metadata=dict(static=True))

    def model(self, *, ema: bool = False) -> nnx.Module:
        """A module carrying the current weights (or their moving average) for evaluation or saving."""
        return nnx.merge(self.graphdef, self.ema if ema else self.params, self.rest)


def init_train_state(model: nnx.Module, tx: optax.GradientTransformation, *, ema: bool = False) -> TrainState:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return TrainState(params=params, rest=rest, opt_state=tx.init(params), step=jnp.zeros((), jnp.int32),
                      ema=jax.tree.map(jnp.copy, params) if ema else None,
                      bad_step=jnp.zeros((), jnp.int32), bad_what=jnp.zeros((), jnp.int32),
                      graphdef=graphdef, tx=tx)


def state_arrays(state: TrainState) -> dict:
    """The arrays a checkpoint stores (the divergence flags are not stored: a diverged state is never saved)."""
    arrays = {"params": state.params, "rest": state.rest, "opt_state": state.opt_state, "step": state.step}
    if state.ema is not None:
        arrays["ema"] = state.ema
    return arrays


def state_from_arrays(state: TrainState, arrays: dict) -> TrainState:
    """`state` with the checkpointed arrays put back."""
    return dataclasses.replace(state, **arrays)


def split_micro_batches(batch: Any, steps: int) -> Any:
    """(B, ...) -> (steps, B/steps, ...). Micro-batch i takes examples i, i+steps, i+2*steps, ..., so
    every device's block of the batch holds an equal share of each micro-batch (no resharding)."""
    def one(x):
        x = x.reshape(x.shape[0] // steps, steps, *x.shape[1:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(one, batch)


def _loss_and_grads(state: TrainState, batch, rng, loss_fn: LossFn, rest):
    # copy=True: the module gets fresh Variables at the grad trace level, so it may update its
    # RNG counters there (merging the jit-level Variables in place raises TraceContextError).
    def compute_loss(params):
        model = nnx.merge(state.graphdef, params, rest, copy=True)
        model.train()
        loss, metrics = loss_fn(model, batch, rng)
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return loss, (metrics, new_rest)

    (loss, (metrics, new_rest)), grads = jax.value_and_grad(compute_loss, has_aux=True)(state.params)
    return loss, metrics, new_rest, grads


def train_step(state: TrainState, batch: Any, rng: jax.Array, loss_fn: LossFn, *,
               grad_accum_steps: int = 1, ema_decay: float = 0.0) -> tuple[TrainState, dict]:
    """One optimizer step (un-jitted; the loop wraps it in `jax.jit`)."""
    if grad_accum_steps == 1:
        loss, metrics, rest, grads = _loss_and_grads(state, batch, rng, loss_fn, state.rest)
    else:
        # Average the gradients (and losses, metrics) of equal micro-batches: the same as one big
        # batch for losses that are per-example means, at 1/grad_accum_steps of the activation memory.
        def micro(carry, xs):
            rest, grad_sum = carry
            i, micro_batch = xs
            loss, metrics, rest, grads = _loss_and_grads(state, micro_batch, jax.random.fold_in(rng, i), loss_fn,
                                                         rest)
            return (rest, jax.tree.map(jnp.add, grad_sum, grads)), (loss, metrics)

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        xs = (jnp.arange(grad_accum_steps), split_micro_batches(batch, grad_accum_steps))
        (rest, grad_sum), (losses, metrics) = jax.lax.scan(micro, (state.rest, zeros), xs)
        grads = jax.tree.map(lambda g: g / grad_accum_steps, grad_sum)
        loss, metrics = losses.mean(), jax.tree.map(lambda m: m.mean(0), metrics)

    grad_norm = optax.tree.norm(grads)

    # Divergence guard. A step whose loss or gradient norm is non-finite changes nothing but the step counter
    # and the flags: the optimizer update runs inside the chosen branch, so a good step updates the parameters
    # and Adam moments in place. (Choosing between a finished update and the old state, with a `where` per
    # array or a `lax.cond` over both, copied the whole state every step: 60-100 ms of Swin-T's 1.2 s CPU step.)
    pre = (jnp.where(jnp.isfinite(loss), 0, 1) | jnp.where(jnp.isfinite(grad_norm), 0, 2)).astype(jnp.int32)

    def update():
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), opt_state, rest

    params, opt_state, rest = jax.lax.cond(pre == 0, update, lambda: (state.params, state.opt_state, state.rest))
    # Finite gradients with an update that overflows the parameters (a huge learning rate) are caught after
    # it: the step is flagged like the others, and the loop stops at its next check without saving.
    # (The largest magnitude, NaN-propagating: a reduction XLA fuses, where `all(isfinite)` wrote a mask first.)
    largest = [jnp.max(jnp.abs(p)).astype(jnp.float32) for p in jax.tree.leaves(params)
               if p.size and jnp.issubdtype(p.dtype, jnp.inexact)]
    finite = jnp.isfinite(jnp.max(jnp.stack(largest))) if largest else jnp.array(True)
    bad = pre | jnp.where(finite, 0, 4).astype(jnp.int32)
    ok = bad == 0
    first_bad = (state.bad_step == 0) & ~ok
    step = state.step + 1
    ema = state.ema
    if ema is not None:
        ema = jax.tree.map(lambda e, p: e * ema_decay + p * (1.0 - ema_decay), ema, params)

    metrics = {"loss": loss, "grad_norm": grad_norm, **metrics}
    new_state = dataclasses.replace(
        state, params=params, rest=rest, opt_state=opt_state, step=step, ema=ema,
        bad_step=jnp.where(first_bad, step, state.bad_step), bad_what=jnp.where(first_bad, bad, state.bad_what))
    return new_state, metrics


def describe_nonfinite(bad_what: int) -> str:
    return " and ".join(name for bit, name in NONFINITE.items() if bad_what & bit)


def make_train_step(loss_fn: LossFn, *, donate: bool = True, grad_accum_steps: int = 1, ema_decay: float = 0.0
                    ) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]:
    """jit(train_step) for one loss function; the old state's buffers are donated (updated in place)."""

    def step(state, batch, rng):
        return train_step(state, batch, rng, loss_fn, grad_accum_steps=grad_accum_steps, ema_decay=ema_decay)

    return jax.jit(step, donate_argnums=(0,) if donate else ())
