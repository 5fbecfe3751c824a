"""Neural fields (signed distance + colour): L1 on the SDF, eikonal term, normal alignment, colour L1.

Batch (from `flaxzoo.data.field_samples`): points (B, P, 3), sdf (B, P), normal (B, P, 3), rgb (B, P, 3),
surface (B, P) 1 on surface samples; `mask` (B,) 0 for the loop's eval padding. The model maps points
(N, 3) -> (sdf (N,), rgb (N, 3)) and is pointwise, so the gradient of sum(sdf) is each point's own.

    loss = sdf_weight * mean |f - sdf|  +  eikonal_weight * mean (|grad f| - 1)^2
         + normal_weight * mean_surface (1 - cos(grad f, n))  +  colour_weight * mean_band |rgb - c|
Colour is fitted where |sdf| < colour_band (surface and near samples): renders and meshes read it there.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def make_loss_fn(*, sdf_weight: float = 1.0, eikonal_weight: float = 0.1, normal_weight: float = 0.1,
                 colour_weight: float = 0.5, colour_band: float = 0.05):
    for name, value in dict(sdf_weight=sdf_weight, eikonal_weight=eikonal_weight, normal_weight=normal_weight,
                            colour_weight=colour_weight, colour_band=colour_band).items():
        if not value >= 0:
            raise ValueError(f"task.kwargs.{name} must be >= 0, got {value}.")

    def loss_fn(model, batch, rng):
        x = batch["points"].reshape(-1, 3).astype(jnp.float32)
        per_point = x.shape[0] // batch["points"].shape[0]
        mask = batch.get("mask")
        w = jnp.ones(x.shape[0]) if mask is None else jnp.repeat(mask.astype(jnp.float32), per_point)

        def total_sdf(points):
            sdf, rgb = model(points)
            return sdf.sum(), (sdf, rgb)

        grad, (sdf, rgb) = jax.grad(total_sdf, has_aux=True)(x)
        target = batch["sdf"].reshape(-1)
        surface = batch["surface"].reshape(-1) * w
        band = (jnp.abs(target) < colour_band).astype(jnp.float32) * w
        mean = lambda v, weight: (v * weight).sum() / jnp.maximum(weight.sum(), 1.0)  # noqa: E731
        norm = jnp.sqrt(jnp.sum(jnp.square(grad), -1) + 1e-12)
        sdf_l1 = mean(jnp.abs(sdf - target), w)
        eikonal = mean(jnp.square(norm - 1.0), w)
        cosine = jnp.sum(grad * batch["normal"].reshape(-1, 3), -1) / norm
        normal = mean(1.0 - cosine, surface)
        colour = mean(jnp.abs(rgb - batch["rgb"].reshape(-1, 3)).mean(-1), band)
        loss = sdf_weight * sdf_l1 + eikonal_weight * eikonal + normal_weight * normal + colour_weight * colour
        return loss, {"sdf_l1": sdf_l1, "eikonal": eikonal, "normal": normal, "colour_l1": colour,
                      "surface_sdf": mean(jnp.abs(sdf), surface)}

    return loss_fn
