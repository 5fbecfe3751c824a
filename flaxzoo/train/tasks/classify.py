"""Image classification: softmax cross-entropy with label smoothing; top-1 accuracy."""
from __future__ import annotations

import jax.numpy as jnp
import optax


def make_loss_fn(*, label_smoothing: float = 0.0, **_unused):
    def loss_fn(model, batch, rng):
        logits = model(batch["image"]).astype(jnp.float32)
        labels = optax.smooth_labels(jax_one_hot(batch["label"], logits.shape[-1]), label_smoothing)
        loss = optax.softmax_cross_entropy(logits, labels).mean()
        accuracy = (logits.argmax(-1) == batch["label"]).mean()
        return loss, {"accuracy": accuracy}

    return loss_fn


def jax_one_hot(labels, num_classes):
    return (labels[:, None] == jnp.arange(num_classes)[None, :]).astype(jnp.float32)
