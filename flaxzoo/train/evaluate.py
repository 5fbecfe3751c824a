"""Evaluation over the whole eval split: the last, short batch is padded to the batch size and masked.

Every batch gets a `mask` field (1 = a real example, 0 = padding); tasks average their metrics over
the real examples (see flaxzoo.train.tasks), and batches are weighted by their real examples (or by
the task's `count`, e.g. tokens), so the result is the metric over exactly the examples of the split.
"""
from __future__ import annotations

import jax
import numpy as np


def pad_batch(batch: dict, size: int) -> dict:
    """Pad every field of a numpy batch to `size` rows (repeating zeros) and add `mask`."""
    n = len(next(iter(batch.values())))
    if n > size:
        raise ValueError(f"An eval batch of {n} examples is larger than the batch size {size}.")
    padded = {k: np.concatenate([np.asarray(v), np.zeros((size - n, *np.shape(v)[1:]), np.asarray(v).dtype)])
              for k, v in batch.items()}
    mask = np.zeros(size, np.float32)
    mask[:n] = 1.0
    if "mask" in batch:  # a task's own mask (e.g. per token) stays; padded rows are already zero there
        return padded
    return {**padded, "mask": mask}


def eval_model(state, *, use_ema: bool = False):
    model = state.model(ema=use_ema)
    model.eval()
    return model


def preview_step(state, batch: dict, preview, *, use_ema: bool = False):
    """The task's image grid (e.g. input | output | target) for the first examples of `batch`."""
    return preview(eval_model(state, use_ema=use_ema), batch)


def eval_step(state, batch: dict, loss_fn, *, use_ema: bool = False) -> tuple[dict, jax.Array]:
    """(metric means over the real examples, their weight: the task's `count` or the number of real examples)."""
    model = eval_model(state, use_ema=use_ema)
    loss, metrics = loss_fn(model, batch, jax.random.key(0))
    metrics = {"loss": loss, **metrics}
    count = metrics.pop("count", batch["mask"].sum() if batch["mask"].ndim == 1 else batch["mask"].size)
    return metrics, count


def evaluate(eval_fn, dataset, to_global, *, local_batch: int, max_batches: int = 0) -> dict:
    """Metric means over `dataset` (an iterable of numpy batches), at most `max_batches` batches (0 = all)."""
    totals, weight = {}, 0.0
    for i, batch in enumerate(dataset):
        if max_batches and i >= max_batches:
            break
        metrics, count = jax.device_get(eval_fn(to_global(pad_batch(batch, local_batch))))
        count = float(count)
        for k, v in metrics.items():
            totals[k] = totals.get(k, 0.0) + float(v) * count
        weight += count
    if weight == 0:
        raise ValueError("The eval split gave no examples; check config.data.eval and config.data.eval_split.")
    return {k: v / weight for k, v in totals.items()}
