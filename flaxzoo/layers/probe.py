"""A probe on an MLP's hidden layer: capture its activations, or add a steering vector to them.

Every MLP-like layer (`Mlp`, `UoME`) calls `probe_hidden(self, h)` on its hidden activations (after
the nonlinearity, before the output projection). Without a probe attached that is the identity:
no state, no extra op, outputs unchanged. `flaxzoo.interpret.capture.attach(model, path)` sets
`layer.probe = Probe(width)`; then

- capture: the probe keeps `h` in its `hidden` variable (a `Captured`), read back inside the same jit;
- steering: it adds `alpha * direction` to `h` at every position. Both are `Steering` variables,
  i.e. model *state*: under `nnx.split` + `jax.jit` they are inputs, so a new vector or alpha
  runs the same compiled program (no retrace).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class Steering(nnx.Variable):
    """A steering direction or its scale (not a Param: never trained, never saved with the weights)."""


class Captured(nnx.Variable):
    """The hidden activations of the probe's last call (capture mode only)."""


class Probe(nnx.Module):
    def __init__(self, width: int, *, capture: bool = False):
        self.width = width
        self.capture = capture  # static: switching it retraces, a new vector does not
        self.direction = Steering(jnp.zeros((width,), jnp.float32))
        self.alpha = Steering(jnp.zeros((), jnp.float32))

    def delta(self) -> jax.Array:
        """(width,) the vector added to the hidden activations at every position."""
        return self.alpha[...] * self.direction[...]

    def record(self, h: jax.Array) -> None:
        if self.capture:  # a plain Variable, not nnx.sow (deprecated outside nnx.capture in flax 0.12.8)
            self.hidden = Captured(h)

    def __call__(self, h: jax.Array) -> jax.Array:
        self.record(h)
        return h + self.delta().astype(h.dtype)


def attached_probe(layer: nnx.Module) -> Probe | None:
    return getattr(layer, "probe", None)


def probe_hidden(layer: nnx.Module, h: jax.Array) -> jax.Array:
    """The layer's hidden activations after its probe (identity when none is attached)."""
    probe = attached_probe(layer)
    return h if probe is None else probe(h)
