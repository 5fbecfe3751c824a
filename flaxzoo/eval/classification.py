"""The classification evaluator: top-1, top-5, per-class accuracy and the most common confusions.

    from flaxzoo.eval import classification
    result = classification.evaluate(model, tfds_source, model_name="swin_tiny_patch4_window7_224")

Preprocessing is the timm eval protocol of the model's pretrained cfg (`flaxzoo.get_spec(name).info`:
input_size, crop_pct, interpolation, mean/std; `flaxzoo.data.image_transform`), the same transform the
training pipeline uses. The last, short batch is padded to the batch size and masked
(`flaxzoo.train.evaluate.pad_batch`, the training loop's own), so every image counts once and only one
batch shape is compiled. Accuracy uses `flaxzoo.eval.metrics.topk_correct`, as the training task does.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
from flax import nnx

from flaxzoo.eval.metrics import topk_correct
from flaxzoo.train.evaluate import pad_batch
from flaxzoo.validate import InputError


@functools.partial(jax.jit, static_argnums=0)
def _logits(graphdef, state, images):
    return nnx.merge(graphdef, state)(images).astype(np.float32)


def evaluate(model: nnx.Module, source, *, model_name: str = "", batch_size: int = 32, limit: int = 0,
             image_key: str = "image", label_key: str = "label", pp: dict | None = None, progress=None) -> dict:
    """{"count", "top1", "top5", "per_class": {class: {"count", "accuracy"}}, "confusions": [...]}; accuracies
    are fractions in [0, 1]. `pp`: preprocessing overrides (e.g. {'crop_pct': 1.0}) on top of the model's cfg."""
    from flaxzoo.data import pipeline

    pp = {"model": model_name, "image_key": image_key, "label_key": label_key, **(pp or {})}
    if limit:
        source = _Head(source, limit)
    ds = pipeline.make_dataset(source, preprocess="image_classification", global_batch=batch_size, seed=0,
                               train=False, **pp)
    model.eval()
    graphdef, state = nnx.split(model)
    logits_all, labels_all = [], []
    for b, batch in enumerate(ds):
        n = len(batch["label"])
        padded = pad_batch(batch, batch_size)
        logits = np.asarray(_logits(graphdef, state, padded["image"]))[:n]
        if logits.ndim != 2:
            raise InputError(f"The model returned {logits.shape}, not class logits (B, C): evaluate a classifier.")
        logits_all.append(logits)
        labels_all.append(np.asarray(batch["label"]))
        if progress:
            progress(sum(len(x) for x in labels_all), len(source))
    if not labels_all:
        raise InputError("The split has no examples: check --data (and --limit).")
    return summarize(np.concatenate(logits_all), np.concatenate(labels_all))


def summarize(logits: np.ndarray, labels: np.ndarray, *, top_confusions: int = 10) -> dict:
    """Accuracy figures of (N, C) logits against (N,) labels (host side)."""
    from flaxzoo.eval.metrics import check_topk

    logits, labels = check_topk(logits, labels)
    num_classes = logits.shape[1]
    pred = logits.argmax(-1)
    top1 = topk_correct(logits, labels, 1)
    top5 = topk_correct(logits, labels, min(5, num_classes))
    per_class = {}
    for c in np.unique(labels):
        sel = labels == c
        per_class[int(c)] = {"count": int(sel.sum()), "accuracy": float(top1[sel].mean())}
    pairs = {}
    wrong = top1 == 0  # top-1 misses; `pred` is the argmax (the first of tied classes)
    for t, p in zip(labels[wrong], pred[wrong]):
        pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
    confusions = [{"true": t, "predicted": p, "count": n}
                  for (t, p), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:top_confusions]]
    accs = [v["accuracy"] for v in per_class.values()]
    return {"count": int(len(labels)), "top1": float(top1.mean()), "top5": float(top5.mean()),
            "mean_per_class_accuracy": float(np.mean(accs)), "per_class": per_class, "confusions": confusions}


class _Head:
    """The first `n` examples of a random-access source."""

    def __init__(self, source, n: int):
        self.source, self.n = source, min(int(n), len(source))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.source[i]
