"""The language-model evaluator: loss (nats per token), perplexity and bits per byte on a held-out split.

The source yields {"tokens": (L+1,), "mask": (L+1,)} windows (`flaxzoo.data.text.PackedBytes` over a TFDS
text set, or `offline:pydoc`); the model predicts tokens[1:] from tokens[:-1], as the `lm` training task
(`flaxzoo.train.tasks.lm.split_batch`, shared) does. Batches are padded to one shape and masked. Bits per
byte is reported for byte-level tokens (ids 0..255 are bytes, `ByteTokenizer`): the total cross-entropy in
bits, EOS predictions included, over the number of predicted bytes.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from flaxzoo.train.evaluate import pad_batch
from flaxzoo.train.tasks.lm import split_batch
from flaxzoo.validate import InputError


@functools.partial(jax.jit, static_argnums=0)
def _sums(graphdef, state, batch):
    inputs, targets, weights = split_batch(batch)
    logits = nnx.merge(graphdef, state)(inputs).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return {"nats": (ce * weights).sum(), "tokens": weights.sum(), "bytes": ((targets < 256) * weights).sum(),
            "correct": ((logits.argmax(-1) == targets) * weights).sum()}


def evaluate(model: nnx.Module, batches, *, batch_size: int, byte_level: bool = True, limit: int = 0) -> dict:
    """{"loss", "perplexity", "bits_per_token", "bits_per_byte" (byte_level), "accuracy", "tokens"} over
    `batches` (an iterable of numpy batches of at most `batch_size` windows; the first `limit` if > 0)."""
    model.eval()
    graphdef, state = nnx.split(model)
    totals = {"nats": 0.0, "tokens": 0.0, "bytes": 0.0, "correct": 0.0}
    for b, batch in enumerate(batches):
        if limit and b >= limit:
            break
        batch = {k: v for k, v in batch.items() if k in ("tokens", "inputs", "targets", "mask")}
        out = jax.device_get(_sums(graphdef, state, pad_batch(batch, batch_size)))
        for k in totals:
            totals[k] += float(out[k])
    if totals["tokens"] == 0:
        raise InputError("The split gave no tokens to predict: check --data (and --limit).")
    loss = totals["nats"] / totals["tokens"]
    result = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2.0),
              "accuracy": totals["correct"] / totals["tokens"], "tokens": int(totals["tokens"])}
    if byte_level and totals["bytes"]:
        result["bits_per_byte"] = totals["nats"] / math.log(2.0) / totals["bytes"]
    return result
