"""Reading SNMF features: the inputs that activate them and their effect on the outputs.

Input side: feature i's top tokens are the columns with the largest coefficients Y[i, j] > 0;
for text each is shown in a +-15 token window of its source, for images as the pixel box the token
covers (a PNG grid per feature).
Output side: the feature's direction through the rest of the network's readout: u = W_out z (the
layer's output projection, biases left out), then the final norm and the unembedding (LM) or the
classifier head; reported as logits(u) - logits(0), so the norm's bias cancels. A layer whose output
width differs from the readout's (early Swin stages) has no direct readout; there the effect is
measured causally instead: the mean change in log-probabilities when the feature steers the model.
"""
from __future__ import annotations

import numpy as np
from flax import nnx
from PIL import Image, ImageDraw

from flaxzoo.layers.experts import UoME
from flaxzoo.layers.mlp import GatedMlp, Mlp
from flaxzoo.validate import InputError


def top_tokens(Y: np.ndarray, feature: int, count: int = 25) -> np.ndarray:
    """Token indices with the largest positive coefficients of `feature`, highest first."""
    row = np.asarray(Y[feature])
    order = np.argsort(-row, kind="stable")[:count]
    return order[row[order] > 0]


def text_context(ids: np.ndarray, example: int, position: int, decode, window: int = 15) -> dict:
    """The token and its +-window neighbours of the same example, decoded: {"left", "token", "right"}."""
    seq = np.asarray(ids[example])
    lo, hi = max(0, position - window), min(len(seq), position + window + 1)
    return {"left": decode(seq[lo:position]), "token": decode(seq[position:position + 1]),
            "right": decode(seq[position + 1:hi])}


def output_projection(layer: nnx.Module) -> np.ndarray:
    """W_out (d_mlp, d_model) of an MLP-like layer (UoME: the experts' W2 blocks stacked = the dense layer's)."""
    if isinstance(layer, UoME):
        return np.asarray(layer.dense_params()[2])
    if isinstance(layer, Mlp):
        return np.asarray(layer.fc2.kernel[...])
    if isinstance(layer, GatedMlp):
        return np.asarray(layer.down.kernel[...])
    raise InputError(f"{type(layer).__name__} is not an MLP layer flaxzoo can read out.")


def readout(model: nnx.Module):
    """(final norm, unembedding/head) of an LM or classifier as a function of a (m, d_model) array, plus d_model;
    None when the model has no such readout (MAXIM restores images)."""
    from flaxzoo.models.swin import SwinTransformer
    from flaxzoo.models.uoe import UoELM, UoEViT

    if isinstance(model, UoELM):
        norm = model.norm if model.norm is not None else model.blocks[-1].norm2  # post-norm: the last block's
        head = model.embed.attend if model.tie_embeddings else model.head
        return (lambda u: head(norm(u))), model.dim
    if isinstance(model, SwinTransformer) and model.head.fc is not None:
        return (lambda u: model.head.fc(model.norm(u))), model.norm.scale[...].shape[0]
    if isinstance(model, UoEViT) and model.head is not None:
        return (lambda u: model.head(model.norm(u))), model.dim
    return None


def direct_logit_effect(model: nnx.Module, layer: nnx.Module, Z: np.ndarray) -> np.ndarray | None:
    """(k, outputs): logits(W_out z_i) - logits(0) for every feature column z_i, or None without a direct readout."""
    found = readout(model)
    W = output_projection(layer)
    if found is None or found[1] != W.shape[1]:
        return None
    fn, _ = found
    u = (np.asarray(Z, np.float32).T @ W).astype(np.float32)  # (k, d_model)
    return np.asarray(fn(u)) - np.asarray(fn(np.zeros((1, W.shape[1]), np.float32)))


def top_outputs(effect_row: np.ndarray, count: int = 10) -> tuple[list[int], list[int]]:
    """(promoted, suppressed) output indices of one feature's effect, strongest first."""
    order = np.argsort(-effect_row, kind="stable")
    return [int(i) for i in order[:count]], [int(i) for i in order[::-1][:count]]


def top_neurons(z: np.ndarray, count: int = 10) -> list[tuple[int, float]]:
    """The feature's largest-|weight| neurons (its WTA support), as (neuron, weight)."""
    order = np.argsort(-np.abs(z), kind="stable")[:count]
    return [(int(i), float(z[i])) for i in order if z[i] != 0]


def patch_grid(images: np.ndarray, boxes: np.ndarray, examples: np.ndarray, *, cell: int = 48,
               columns: int = 5, context: float = 0.5) -> Image.Image:
    """A grid of the input patches (each token's pixel box, widened by `context` of its size, the box outlined).

    images (N, H, W, C) in any range (each patch is min-max scaled for display)."""
    count = len(examples)
    rows = max(1, -(-count // columns))
    grid = Image.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    h, w = images.shape[1:3]
    for i, (example, box) in enumerate(zip(examples, boxes)):
        y0, x0, y1, x1 = (int(v) for v in box)
        py, px = int((y1 - y0) * context), int((x1 - x0) * context)
        cy0, cx0, cy1, cx1 = max(0, y0 - py), max(0, x0 - px), min(h, y1 + py), min(w, x1 + px)
        crop = np.asarray(images[example][cy0:cy1, cx0:cx1], np.float32)
        if crop.shape[-1] == 1:
            crop = np.repeat(crop, 3, -1)
        crop = (crop - crop.min()) / max(float(crop.max() - crop.min()), 1e-8)
        tile = Image.fromarray((crop[..., :3] * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        sy, sx = cell / max(cy1 - cy0, 1), cell / max(cx1 - cx0, 1)
        draw.rectangle([(x0 - cx0) * sx, (y0 - cy0) * sy, (x1 - cx0) * sx - 1, (y1 - cy0) * sy - 1],
                       outline=(255, 0, 0))
        grid.paste(tile, ((i % columns) * cell, (i // columns) * cell))
    return grid
