"""Causal language modelling: next-token cross-entropy; loss, bits per token, accuracy.

Routed models (UoE in `trained` mode) record their router auxiliary losses (load balancing,
z-loss, already weighted by each layer's coefficient) during the forward pass; they are added
to the loss here and reported as `router_loss`. In `faithful` mode they are zero.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import optax

from flaxzoo.layers.experts import router_loss


def split_batch(batch):
    """{"tokens": (B, L+1)} or {"inputs", "targets"} (+ optional "mask", 1 = count) -> inputs, targets, weights.

    The mask is per token ((B, L) or (B, L+1)) or per example ((B,), the loop's eval padding)."""
    if "tokens" in batch:
        tokens = batch["tokens"]
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
    elif "inputs" in batch and "targets" in batch:
        inputs, targets = batch["inputs"], batch["targets"]
    else:
        raise ValueError(f"An LM batch needs 'tokens' (B, L+1) or 'inputs' and 'targets' (B, L); got keys "
                         f"{sorted(batch)}.")
    weights = batch.get("mask")
    weights = jnp.ones(targets.shape, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    if weights.ndim == 1:  # per example
        weights = jnp.broadcast_to(weights[:, None], targets.shape)
    elif weights.shape != targets.shape:  # a mask over `tokens` (B, L+1) applies to the targets
        weights = weights[:, 1:]
    return inputs, targets, weights


def make_loss_fn(*, router_loss_weight: float = 1.0):
    def loss_fn(model, batch, rng):
        inputs, targets, weights = split_batch(batch)
        logits = model(inputs).astype(jnp.float32)
        per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        count = jnp.maximum(weights.sum(), 1.0)
        ce = (per_token * weights).sum() / count
        accuracy = ((logits.argmax(-1) == targets) * weights).sum() / count
        aux = router_loss(model)
        # `count`: what the means are over (tokens), so the loop weights eval batches by it.
        metrics = {"ce": ce, "bits_per_token": ce / math.log(2.0), "accuracy": accuracy, "router_loss": aux,
                   "count": weights.sum()}
        return ce + router_loss_weight * aux, metrics

    return loss_fn
