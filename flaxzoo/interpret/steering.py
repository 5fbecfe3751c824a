"""Steering with a feature: add alpha * z/||z|| to a layer's hidden activations at every position, with alpha
calibrated so the output distribution moves by a target KL divergence (the paper's protocol, offline).

`calibrate` bisects alpha (geometrically, after growing an upper bound) until KL(p_base || p_steered)
on a fixed base input is within `rtol` of the target, for one sign; a target it cannot reach within
`alpha_max` is reported as not hit rather than silently clipped. `sample` draws LM continuations
with the steering vector on (top-k / top-p sampling).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from flaxzoo.validate import InputError

TARGETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5)  # the paper's KL targets


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    norm = float(np.linalg.norm(v))
    if norm == 0:
        raise InputError("A steering direction is all zeros; pick a feature with a nonzero vector.")
    return v / norm


def kl_divergence(logits_before, logits_after) -> float:
    """Mean over rows (every leading index) of KL(softmax(before) || softmax(after)), in nats."""
    lp = jax.nn.log_softmax(jnp.asarray(logits_before, jnp.float32), -1)
    lq = jax.nn.log_softmax(jnp.asarray(logits_after, jnp.float32), -1)
    return float(jnp.mean(jnp.sum(jnp.exp(lp) * (lp - lq), -1)))


@dataclasses.dataclass
class Calibration:
    alpha: float  # signed
    kl: float
    target: float
    hit: bool
    evaluations: int


def calibrate(kl_at: Callable[[float], float], target: float, *, sign: int = 1, alpha_start: float = 1.0,
              alpha_max: float = 1e4, steps: int = 20, rtol: float = 0.1) -> Calibration:
    """alpha (with `sign`) such that kl_at(alpha) ~= target, assuming KL grows with |alpha|."""
    if not target > 0:
        raise InputError(f"The KL target must be > 0; got {target}.")
    if sign not in (1, -1):
        raise InputError(f"sign must be +1 or -1; got {sign}.")
    evaluations = 0

    def at(a):
        nonlocal evaluations
        evaluations += 1
        return float(kl_at(sign * a))

    lo, hi = 0.0, float(alpha_start)
    kl_hi = at(hi)
    while kl_hi < target and hi < alpha_max:
        lo, hi = hi, min(hi * 4, alpha_max)
        kl_hi = at(hi)
    best = (abs(kl_hi - target), hi, kl_hi)
    for _ in range(steps):
        if best[0] <= rtol * target or kl_hi < target:
            break
        mid = np.sqrt(lo * hi) if lo > 0 else hi / 2
        kl_mid = at(mid)
        best = min(best, (abs(kl_mid - target), mid, kl_mid))
        lo, hi = (mid, hi) if kl_mid < target else (lo, mid)
    return Calibration(alpha=sign * best[1], kl=best[2], target=target, hit=best[0] <= rtol * target,
                       evaluations=evaluations)


def sample(steerer, prompt_ids: np.ndarray, direction, alpha: float, *, new_tokens: int = 50, top_k: int = 30,
           top_p: float = 0.3, seed: int = 0) -> np.ndarray:
    """(B, prompt + new_tokens) ids: continuations of prompt_ids (B, P) from a causal LM under steering.

    The sequence is kept at its final length (right-padded with the last prompt token), so each step
    runs the same compiled program; causality makes the padding invisible to earlier positions.
    """
    prompt_ids = np.asarray(prompt_ids)
    b, p = prompt_ids.shape
    seq = np.concatenate([prompt_ids, np.repeat(prompt_ids[:, -1:], new_tokens, 1)], 1)
    rng = np.random.default_rng(seed)
    for t in range(p, p + new_tokens):
        logits = np.asarray(steerer(seq, direction, alpha))[:, t - 1].astype(np.float64)
        for row in range(b):
            top = np.argsort(-logits[row])[:top_k]
            probs = np.exp(logits[row, top] - logits[row, top].max())
            probs /= probs.sum()
            keep = np.cumsum(probs) - probs < top_p  # nucleus: the smallest prefix reaching top_p
            probs = probs * keep
            seq[row, t] = rng.choice(top, p=probs / probs.sum())
    return seq
