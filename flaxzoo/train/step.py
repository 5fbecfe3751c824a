"""The jitted training step, shared by every task.

NNX modules are split once into a static graph definition and array state; the step
is a plain `jax.jit` over that state (merging the module inside), which costs far less
per step than `nnx.jit` and needs no NNX transform machinery (MaxText does the same).
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


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """Everything a step reads and writes: parameters, other module state, optimizer state, step counter."""
    params: nnx.State
    rest: nnx.State  # non-parameter module state (RNG counters, batch stats, ...)
    opt_state: optax.OptState
    step: jax.Array
    graphdef: nnx.GraphDef = dataclasses.field(metadata=dict(static=True))
    tx: optax.GradientTransformation = dataclasses.field(metadata=dict(static=True))

    def model(self) -> nnx.Module:
        """A module carrying the current weights (for evaluation or saving)."""
        return nnx.merge(self.graphdef, self.params, self.rest)


def init_train_state(model: nnx.Module, tx: optax.GradientTransformation) -> TrainState:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return TrainState(params=params, rest=rest, opt_state=tx.init(params), step=jnp.zeros((), jnp.int32),
                      graphdef=graphdef, tx=tx)


def train_step(state: TrainState, batch: Any, rng: jax.Array, loss_fn: LossFn) -> tuple[TrainState, dict]:
    """One optimizer step (un-jitted; `make_train_step` wraps it)."""

    # copy=True: the module gets fresh Variables at the grad trace level, so it may update its
    # RNG counters there (merging the jit-level Variables in place raises TraceContextError).
    def compute_loss(params):
        model = nnx.merge(state.graphdef, params, state.rest, copy=True)
        model.train()
        loss, metrics = loss_fn(model, batch, rng)
        _, _, rest = nnx.split(model, nnx.Param, ...)
        return loss, (metrics, rest)

    (loss, (metrics, rest)), grads = jax.value_and_grad(compute_loss, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
    new_state = dataclasses.replace(state, params=params, rest=rest, opt_state=opt_state, step=state.step + 1)
    return new_state, metrics


def make_train_step(loss_fn: LossFn, *, donate: bool = True) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]:
    """jit(train_step) for one loss function; the old state's buffers are donated (updated in place)."""

    def step(state, batch, rng):
        return train_step(state, batch, rng, loss_fn)

    return jax.jit(step, donate_argnums=(0,) if donate else ())
