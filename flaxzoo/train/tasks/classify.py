"""Classification: softmax cross-entropy with label smoothing; top-1 accuracy and top-5.

Labels are integer class ids (B,) or soft targets (B, C) (Mixup/CutMix in the pipeline make those);
label smoothing is applied to either, after mixing, which is what timm's Mixup with smoothing gives
(smoothing is linear, so it commutes with the mix). Accuracy compares with the label's argmax.

The input is `batch[input_key]` ('image'; 'tokens' for sequence classification such as ListOps), with
`batch[mask_key]` (e.g. 'token_mask') passed as the model's second argument when `mask_key` is set.
A batch `mask` (B,) (1 = real example, 0 = the loop's eval padding) weights the loss and accuracy.
"""
from __future__ import annotations

import jax.numpy as jnp
import optax

from flaxzoo.eval.metrics import topk_correct


def make_loss_fn(*, label_smoothing: float = 0.0, input_key: str = "image", mask_key: str = ""):
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")

    def loss_fn(model, batch, rng):
        inputs = batch[input_key]
        logits = model(inputs, batch[mask_key]) if mask_key else model(inputs)
        logits = logits.astype(jnp.float32)
        targets = soft_targets(batch["label"], logits.shape[-1])
        targets = optax.smooth_labels(targets, label_smoothing) if label_smoothing else targets
        weights = batch.get("mask")
        weights = jnp.ones(logits.shape[:1], jnp.float32) if weights is None else weights.astype(jnp.float32)
        count = jnp.maximum(weights.sum(), 1.0)
        loss = (optax.softmax_cross_entropy(logits, targets) * weights).sum() / count
        labels = targets.argmax(-1)
        # the evaluator's top-k (flaxzoo.eval.metrics): ties count against the prediction
        accuracy = (topk_correct(logits, labels, 1) * weights).sum() / count
        top5 = (topk_correct(logits, labels, min(5, logits.shape[-1])) * weights).sum() / count
        return loss, {"accuracy": accuracy, "top5": top5}

    return loss_fn


def soft_targets(labels, num_classes: int):
    """(B,) integer ids -> one-hot (B, C); (B, C) soft targets pass through (as float32)."""
    if labels.ndim == 2:
        if labels.shape[-1] != num_classes:
            raise ValueError(f"Soft labels have {labels.shape[-1]} classes but the model predicts {num_classes}; "
                             f"set data.pp.num_classes to the model's num_classes.")
        return labels.astype(jnp.float32)
    if labels.ndim != 1:
        raise ValueError(f"Labels must be (B,) class ids or (B, C) soft targets, got shape {labels.shape}.")
    return (labels[:, None] == jnp.arange(num_classes)[None, :]).astype(jnp.float32)
