"""Hidden activations of any MLP-like layer of any flaxzoo model, and steering them.

A layer is named by its parameter path, e.g. `layers.2.blocks.1.mlp` (Swin), `blocks.1.mlp`
(UoE LM, a UoME layer), `layers.0.blocks.0.mlp.uome` (Swin-UoE) or a MAXIM channel MLP such as
`stages.0.bottleneck.rdcab.0.channel_mixing`; `mlp_layers(model)` lists them all.

The hidden activations are the vector that multiplies the output projection (after the
nonlinearity). For a UoME layer they are the hidden units of all experts side by side: expert e owns
columns e*F/E:(e+1)*F/E, which makes them the equivalent dense MLP's hidden layer (the equitant
decomposition); a position an expert did not process has zeros in that expert's block.

`capture` runs the model in eval mode over a dataset in batches and returns `Activations`: A
(d_mlp, n_tokens), float32, in memory or memory-mapped to a .npy file, with per-token metadata
(example index, position; for images the token's grid cell and the input pixel box it covers).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.files import atomic_path
from flaxzoo.layers.experts import UoME
from flaxzoo.layers.mlp import GatedMlp, Mlp
from flaxzoo.layers.probe import Probe, Steering
from flaxzoo.validate import InputError, check_positive_int

HOOKABLE = (Mlp, GatedMlp, UoME)


def _path_name(path) -> str:
    return ".".join(str(p) for p in path)


def mlp_layers(model: nnx.Module) -> dict[str, nnx.Module]:
    """Every layer with a probe hook, by dotted parameter path, in model order."""
    return {_path_name(path): module for path, module in nnx.iter_modules(model) if isinstance(module, HOOKABLE)}


def hidden_width(layer: nnx.Module) -> int:
    """d_mlp: the hidden width the probe sees (all experts together for UoME)."""
    if isinstance(layer, UoME):
        e, _, fe = layer.w1[...].shape
        return e * fe
    if isinstance(layer, Mlp):
        return layer.fc1.kernel[...].shape[-1]
    return layer.up.kernel[...].shape[-1]


def find_layer(model: nnx.Module, path: str) -> nnx.Module:
    layers = mlp_layers(model)
    if path not in layers:
        names = list(layers)
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        raise InputError(f"{type(model).__name__} has no MLP layer at {path!r}. Its MLP layers: {shown or 'none'}. "
                         f"List them with flaxzoo.interpret.capture.mlp_layers(model).")
    return layers[path]


def attach(model: nnx.Module, path: str, *, capture: bool = False) -> Probe:
    """Put a probe on the layer at `path` (replacing any there) and return it."""
    layer = find_layer(model, path)
    layer.probe = Probe(hidden_width(layer), capture=capture)
    return layer.probe


def detach(model: nnx.Module, path: str) -> None:
    """Remove the layer's probe: the model is exactly as before `attach`."""
    layer = find_layer(model, path)
    if getattr(layer, "probe", None) is not None:
        del layer.probe


def default_forward(model: nnx.Module, x):
    return model(x)


@dataclasses.dataclass
class Activations:
    """A (d, n) hidden activations, one column per token; meta: per-token arrays of length n.

    meta always has `example` (index into the inputs) and `position` (flat token index within the
    example). Spatial layers add `row`, `col` (the token's grid cell) and `box` (n, 4): the input
    pixel rectangle y0, x0, y1, x1 the cell covers.
    """
    A: np.ndarray
    meta: dict[str, np.ndarray]
    layer: str
    grid: tuple[int, ...]  # tokens per example: (H, W) for spatial layers, (L,) for sequences

    @property
    def tokens_per_example(self) -> int:
        return int(np.prod(self.grid))


def _token_grid(hidden_shape, input_shape) -> tuple[int, ...]:
    """(H, W) for a spatial hidden map, (L,) for a sequence; image sequences are mapped back to a grid."""
    if len(hidden_shape) == 4:
        return tuple(hidden_shape[1:3])
    length = hidden_shape[1]
    if len(input_shape) == 4:  # tokens of an image flattened row-major (UoE ViT, Swin-UoE): recover the grid
        ih, iw = input_shape[1:3]
        h = round(math.sqrt(length * ih / iw))
        if h and length % h == 0:
            return (h, length // h)
    return (length,)


def _metadata(num_examples: int, grid: tuple[int, ...], input_shape) -> dict[str, np.ndarray]:
    per = int(np.prod(grid))
    meta = {"example": np.repeat(np.arange(num_examples), per).astype(np.int64),
            "position": np.tile(np.arange(per), num_examples).astype(np.int64)}
    if len(grid) == 2:
        h, w = grid
        ih, iw = input_shape[1:3]
        row, col = np.divmod(meta["position"], w)
        sy, sx = ih / h, iw / w
        meta["row"], meta["col"] = row, col
        meta["box"] = np.stack([np.floor(row * sy), np.floor(col * sx), np.ceil((row + 1) * sy),
                                np.ceil((col + 1) * sx)], 1).astype(np.int64)
    return meta


def _routes_over_batch(model: nnx.Module, path: str) -> bool:
    """A UoE LM block with uome_route_over="batch" feeds its UoME (L, B, d): its hidden comes out time-major."""
    parent = model
    for part in path.split(".")[:-1]:
        parent = parent[int(part)] if part.isdigit() else getattr(parent, part)
    return getattr(parent, "uome_route_over", None) == "batch"


def _capturing_forward(model: nnx.Module, path: str, forward: Callable):
    graphdef, state = nnx.split(model)
    time_major = bool(path) and _routes_over_batch(model, path)

    @jax.jit
    def run(state, x):
        m = nnx.merge(graphdef, state)
        forward(m, x)
        hidden = find_layer(m, path).probe.hidden.get_value().astype(jnp.float32)
        return jnp.swapaxes(hidden, 0, 1) if time_major else hidden

    return lambda x: run(state, x)


def capture(model: nnx.Module, path: str, inputs, *, batch_size: int = 8, forward: Callable = default_forward,
            out: str | os.PathLike | None = None, overwrite: bool = False) -> Activations:
    """Hidden activations of layer `path` over `inputs` (an array, examples along axis 0), in eval mode
    (the model is left in eval mode; call `model.train()` to go back).

    forward(model, batch) runs the model (default `model(batch)`). With `out` (a .npy path) A is
    written there (atomically) and returned memory-mapped; an existing file is kept unless `overwrite`.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if not hasattr(inputs, "shape") or len(inputs.shape) < 2:
        raise InputError("inputs must be an array with examples along axis 0 (images (N, H, W, C) or token ids "
                         "(N, L)); got " + (f"shape {inputs.shape}" if hasattr(inputs, "shape") else
                                            type(inputs).__name__) + ".")
    if out is not None and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (or --overwrite) to replace it, or pick another path.")
    layer = find_layer(model, path)
    previous = getattr(layer, "probe", None)
    model.eval()
    attach(model, path, capture=True)
    try:
        run = _capturing_forward(model, path, forward)
        num = inputs.shape[0]

        def hidden_of(start):
            batch = np.asarray(inputs[start:start + batch_size])
            if len(batch) < batch_size:  # pad the last batch: one compiled shape for the whole run
                batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), 0)])
            return np.asarray(run(batch))[:min(batch_size, num - start)]

        first = hidden_of(0)
        grid = _token_grid(first.shape, inputs.shape)
        per = int(np.prod(grid))
        shape = (first.shape[-1], num * per)

        def fill(A):
            for start in range(0, num, batch_size):
                hidden = first if start == 0 else hidden_of(start)
                A[:, start * per:(start + len(hidden)) * per] = hidden.reshape(-1, hidden.shape[-1]).T
            return A

        if out is None:
            A = fill(np.empty(shape, np.float32))
        else:
            with atomic_path(out) as tmp:
                mapped = fill(np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape))
                mapped.flush()
                del mapped
            A = np.load(out, mmap_mode="r")
    finally:
        detach(model, path)
        if previous is not None:
            layer.probe = previous
    return Activations(A=A, meta=_metadata(num, grid, inputs.shape), layer=path, grid=grid)


class Steerer:
    """A jitted forward with a steering vector on one layer: `steerer(x, direction, alpha)`.

    direction (d_mlp,) and alpha are inputs of the compiled program: a new vector or alpha does not
    retrace (`steerer.traces` counts compilations). alpha * direction is added to the hidden
    activations at every position. Call `close()` to remove the probe.
    """

    def __init__(self, model: nnx.Module, path: str, *, forward: Callable = default_forward):
        model.eval()
        self.model, self.path = model, path
        self.width = hidden_width(find_layer(model, path))
        attach(model, path)
        self.traces = 0
        graphdef, _, rest = nnx.split(model, Steering, ...)

        def run(steering, rest, x):
            self.traces += 1  # runs only while tracing
            return forward(nnx.merge(graphdef, steering, rest), x)

        self._run, self._rest = jax.jit(run), rest

    def __call__(self, x, direction=None, alpha: float = 0.0):
        if direction is None:
            direction = np.zeros((self.width,), np.float32)
        direction = np.asarray(direction, np.float32)
        if direction.shape != (self.width,):
            raise InputError(f"The steering direction must have shape ({self.width},) (the hidden width of "
                             f"{self.path}); got {direction.shape}.")
        probe = find_layer(self.model, self.path).probe
        probe.direction.set_value(jnp.asarray(direction))
        probe.alpha.set_value(jnp.asarray(alpha, jnp.float32))
        return self._run(nnx.state(self.model, Steering), self._rest, x)

    def close(self) -> None:
        detach(self.model, self.path)
