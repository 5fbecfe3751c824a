"""The function an artefact computes: a model in eval mode with its weights baked in as constants and,
with `preprocess=True`, the pre/post-processing a user would otherwise write, so raw uint8 images go in.

    restore   (MAXIM)        float [0, 1] NHWC -> the final output; preprocessed: uint8 any size ->
                             /255, reflect-pad to the size multiple (as flaxzoo.eval.restore does),
                             model, crop back, clip, uint8
    classify  (Swin, UoEViT) normalised NHWC -> logits; preprocessed: uint8 -> /255, (x - mean) / std
    tokens    (UoE LM, LRA)  int32 (batch, length) ids -> logits
"""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from flax import nnx


def model_kind(model: nnx.Module) -> str:
    from flaxzoo.models.uoe import UoELM, UoELRAClassifier

    if hasattr(model, "size_multiple"):
        return "restore"
    if isinstance(model, (UoELM, UoELRAClassifier)):
        return "tokens"
    return "classify"


def routes_tokens(model: nnx.Module) -> bool:
    """Whether the model routes positions to experts (UoE's SMHA / UoME: top-k, sort, scatter-add)."""
    from flaxzoo.layers.experts import UoME
    from flaxzoo.layers.smha import SMHA

    return any(isinstance(m, (SMHA, UoME)) for _, m in nnx.iter_graph(model))


def _merge(graphdef, state):
    # A fresh copy of the variables per trace: UoE's trained mode writes its router loss into a variable,
    # which NNX refuses to do on variables created outside the trace.
    if "copy" in inspect.signature(nnx.merge).parameters:
        return nnx.merge(graphdef, state, copy=True)
    return nnx.merge(graphdef, jax.tree.map(lambda a: a, state))


def model_function(model: nnx.Module, *, preprocess: bool = False, mean=None, std=None):
    """x -> model(x) as a pure function of x alone (the weights are closed over)."""
    model.eval()
    kind = model_kind(model)
    graphdef, state = nnx.split(model)

    def apply(x):
        out = _merge(graphdef, state)(x)
        while isinstance(out, (list, tuple)):  # MAXIM: stages x scales; the last is the restored image
            out = out[-1]
        return out

    if not preprocess:
        return apply
    if kind == "restore":
        return _restore_raw(apply, tuple(model.size_multiple))
    if kind == "classify":
        if mean is None or std is None:
            raise ValueError("preprocess=True for a classifier needs its normalisation: pass mean= and std= "
                             "(the preset's are flaxzoo.get_spec(name).pretrained_cfg['mean'] / ['std']).")
        return _classify_raw(apply, mean, std)
    raise ValueError("preprocess=True is for image models (restorers and classifiers); token models take int32 "
                     "ids as they are: pass preprocess=False.")


def _classify_raw(apply, mean, std):
    mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

    def classify(image_u8):
        return apply((image_u8.astype(jnp.float32) / 255.0 - mean) / std)

    return classify


def reflect_pad_indices(n, multiple: int):
    """Source row for each row of the padded image, and the top offset, as flaxzoo.eval.restore pads
    (reflect one row if odd, then reflect symmetrically up to the multiple). Works for symbolic n:
    the padded size is written multiple * ceil(n / multiple) so the model can prove it divisible."""
    padded = multiple * ((n + multiple - 1) // multiple)
    even = n + n % 2
    top = (padded - even) // 2
    k = jnp.abs(jnp.arange(padded) - top)
    k = jnp.where(k >= even, 2 * (even - 1) - k, k)  # reflected into the even-sized image
    return jnp.where(k >= n, 2 * (n - 1) - k, k), top  # its extra row is row n - 2


def _restore_raw(apply, multiple):
    def restore(image_u8):
        _, h, w, _ = image_u8.shape
        rows, top = reflect_pad_indices(h, multiple[0])
        cols, left = reflect_pad_indices(w, multiple[1])
        x = image_u8.astype(jnp.float32) / 255.0
        y = apply(jnp.take(jnp.take(x, rows, axis=1), cols, axis=2))
        # The offsets as traced values: a symbolic start cannot be proven >= 0 by the shape checker.
        top, left = (jnp.zeros((), jnp.int32) + d for d in (top, left))
        y = jax.lax.dynamic_slice_in_dim(jax.lax.dynamic_slice_in_dim(y, top, h, axis=1), left, w, axis=2)
        return jnp.round(jnp.clip(y, 0.0, 1.0) * 255.0).astype(jnp.uint8)

    return restore
