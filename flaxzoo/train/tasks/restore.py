"""Image restoration (MAXIM's training objective): Charbonnier + frequency loss over all stages and scales.

The paper (Tu et al. 2022, Eq. 9-10) supervises every stage s and every scale n:

    L = sum_s sum_n  L_char(R_{s,n}, T_n) + lambda * L_freq(R_{s,n}, T_n),  lambda = 0.1,
    L_char = mean sqrt((R - T)^2 + eps^2), eps = 1e-3,
    L_freq = mean |FFT2(R) - FFT2(T)| (real and imaginary parts, per channel).

The official training code was never released. T_n is the target resized to scale n with
`target_resize`, by default 'nearest', the same operator that builds the model's input pyramid
(so every scale's residual and target are the same pixels); 'bilinear' (antialiased) is the
alternative. The model stays task-free: it only has to return outputs[stage][scale].

Batch: {"input": (B, H, W, C) degraded, "target": (B, H, W, C) clean}, float in [0, 1].
Metrics: per-term losses and `psnr` of the final output (clipped to [0, 1]) against the target.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from flaxzoo.eval.metrics import psnr_from_mse


def charbonnier(pred, target, eps: float = 1e-3):
    """Per example: mean sqrt((pred - target)^2 + eps^2) over (H, W, C)."""
    return jnp.mean(jnp.sqrt((pred - target) ** 2 + eps ** 2), axis=(1, 2, 3))


def frequency_loss(pred, target):
    """Per example: L1 distance between the 2-D spectra over (H, W), real and imaginary parts."""
    diff = jnp.fft.fft2(pred.astype(jnp.float32), axes=(1, 2)) - jnp.fft.fft2(target.astype(jnp.float32), axes=(1, 2))
    return jnp.mean(jnp.abs(diff.real), axis=(1, 2, 3)) + jnp.mean(jnp.abs(diff.imag), axis=(1, 2, 3))


def example_psnr(pred, target, pixel_mask=None):
    """Per example, on [0, 1]; `pixel_mask` (B, H, W, 1), 1 on real pixels: canvas padding is not counted."""
    err = (jnp.clip(pred, 0.0, 1.0) - target) ** 2
    if pixel_mask is None:
        mse = jnp.mean(err, axis=(1, 2, 3))
    else:
        mask = pixel_mask.astype(jnp.float32)
        mse = (err * mask).sum(axis=(1, 2, 3)) / jnp.maximum(mask.sum(axis=(1, 2, 3)) * err.shape[-1], 1.0)
    return psnr_from_mse(jnp.maximum(mse, 1e-10), 1.0, xp=jnp)  # the evaluators' PSNR; clamped: finite in jit


def batch_psnr(pred, target):
    return jnp.mean(example_psnr(pred, target))


def resize_target(target, shape, method: str):
    if target.shape[1:3] == tuple(shape):
        return target
    return jax.image.resize(target, (target.shape[0], *shape, target.shape[-1]), method=method)


def final_output(outputs):
    """The last stage's full-scale output, whatever nesting the model returns."""
    while isinstance(outputs, (list, tuple)):
        outputs = outputs[-1]
    return outputs


def make_loss_fn(*, freq_weight: float = 0.1, charbonnier_eps: float = 1e-3, target_resize: str = "nearest"):
    if target_resize not in ("nearest", "bilinear"):
        raise ValueError(f"target_resize must be 'nearest' or 'bilinear', got {target_resize!r}.")

    def loss_fn(model, batch, rng):
        outputs = model(batch["input"])
        if not isinstance(outputs, (list, tuple)):
            outputs = [[outputs]]
        outputs = [o if isinstance(o, (list, tuple)) else [o] for o in outputs]
        target = batch["target"].astype(jnp.float32)
        # Per-example terms, averaged with the batch's `mask` (1 = a real example, 0 = eval padding). Images padded
        # to a common canvas (`pixel_mask`) have PSNR over their real pixels only; the losses see the whole canvas.
        weights = batch.get("mask")
        weights = jnp.ones(target.shape[0], jnp.float32) if weights is None else weights.astype(jnp.float32)
        mean = lambda per_example: (per_example * weights).sum() / jnp.maximum(weights.sum(), 1.0)  # noqa: E731
        char_total = jnp.zeros((), jnp.float32)
        freq_total = jnp.zeros((), jnp.float32)
        for stage in outputs:
            for pred in stage:
                t = resize_target(target, pred.shape[1:3], target_resize)
                pred = pred.astype(jnp.float32)
                char_total += mean(charbonnier(pred, t, charbonnier_eps))
                freq_total += mean(frequency_loss(pred, t))
        loss = char_total + freq_weight * freq_total
        final = outputs[-1][-1].astype(jnp.float32)
        return loss, {"charbonnier": char_total, "frequency": freq_total, "psnr": mean(example_psnr(final, target, batch.get("pixel_mask")))}

    return loss_fn


def preview(model, batch, max_images: int = 4):
    """Input | output | target side by side for the first examples (the eval image grid in TensorBoard)."""
    x = batch["input"][:max_images]
    out = jnp.clip(final_output(model(x)).astype(jnp.float32), 0.0, 1.0)
    return jnp.concatenate([jnp.clip(x.astype(jnp.float32), 0, 1), out, batch["target"][:max_images]
                            .astype(jnp.float32)], axis=2)
