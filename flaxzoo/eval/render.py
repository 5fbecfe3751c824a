"""Sphere-traced PNG renders of a field (`model(points) -> (sdf, rgb)`): shaded normals and colour.

Each pixel's ray starts where it enters the box [-1, 1]^3 and steps by the field's SDF value (times 0.8:
a fitted field is only roughly a distance) until |sdf| < `hit_eps` or it leaves the box. Normals are the
field's gradient at the hit (jax.grad); shading is Lambert with a headlight plus ambient light. Misses are
white. One jitted program per (resolution, steps); views are (azimuth, elevation) in degrees.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.files import atomic_path

DEFAULT_VIEWS = ((30.0, 20.0), (150.0, 20.0), (270.0, 50.0))


def camera_rays(azimuth: float, elevation: float, resolution: int, *, distance: float = 3.0, fov: float = 40.0):
    """Ray origins and unit directions (R*R, 3) of a camera looking at the origin."""
    az, el = np.radians(azimuth), np.radians(elevation)
    eye = distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = np.tan(np.radians(fov) / 2)
    s = np.linspace(-half, half, resolution)
    u, v = np.meshgrid(s, -s)
    dirs = forward + u[..., None] * right + v[..., None] * up
    dirs = dirs.reshape(-1, 3) / np.linalg.norm(dirs.reshape(-1, 3), axis=-1, keepdims=True)
    return np.broadcast_to(eye, dirs.shape).astype(np.float32), dirs.astype(np.float32)


def _box_entry(origins, dirs):
    inv = 1.0 / jnp.where(jnp.abs(dirs) < 1e-9, 1e-9, dirs)
    t0, t1 = (-1.0 - origins) * inv, (1.0 - origins) * inv
    near = jnp.max(jnp.minimum(t0, t1), -1)
    far = jnp.min(jnp.maximum(t0, t1), -1)
    return jnp.maximum(near, 0.0), far


@functools.lru_cache(maxsize=8)
def _tracer(graphdef, steps: int, hit_eps: float):
    def trace(state, origins, dirs):
        model = nnx.merge(graphdef, state)
        near, far = _box_entry(origins, dirs)

        def step(_, t):
            sdf, _ = model(origins + t[:, None] * dirs)
            return jnp.where(t < far, t + 0.8 * jnp.maximum(sdf, 0.2 * hit_eps), t)

        t = jax.lax.fori_loop(0, steps, step, near)
        points = origins + t[:, None] * dirs
        grad, (sdf, rgb) = jax.grad(lambda p: (lambda s, c: (s.sum(), (s, c)))(*model(p)), has_aux=True)(points)
        hit = (sdf < 5 * hit_eps) & (t < far)  # below the surface counts: an overshoot of a thin part
        normal = grad / jnp.maximum(jnp.linalg.norm(grad, axis=-1, keepdims=True), 1e-9)
        return hit, normal, rgb

    return jax.jit(trace)


def render_views(model, views=DEFAULT_VIEWS, *, resolution: int = 128, steps: int = 96, hit_eps: float = 1e-3):
    """uint8 image (R, R * len(views), 3) per kind: {'normals': shaded normal map, 'colour': shaded colour}."""
    graphdef, state = nnx.split(model)
    trace = _tracer(graphdef, steps, hit_eps)
    normals_row, colour_row = [], []
    for azimuth, elevation in views:
        origins, dirs = camera_rays(azimuth, elevation, resolution)
        hit, normal, rgb = (np.asarray(a) for a in trace(state, origins, dirs))
        light = np.clip(-(normal * dirs).sum(-1), 0.0, 1.0)[:, None]
        shade = 0.25 + 0.75 * light
        white = np.ones_like(rgb)
        normals_row.append(np.where(hit[:, None], (0.5 + 0.5 * normal) * shade, white))
        colour_row.append(np.where(hit[:, None], np.clip(rgb, 0, 1) * shade, white))
    as_image = lambda row: (np.concatenate([r.reshape(resolution, resolution, 3) for r in row], 1) * 255  # noqa: E731
                            ).round().astype(np.uint8)
    return {"normals": as_image(normals_row), "colour": as_image(colour_row)}


def save_png(path, image: np.ndarray) -> None:
    """Write a uint8 image as PNG through a temporary file (never a half-written PNG)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def render_png(model, path, views=DEFAULT_VIEWS, *, resolution: int = 128, steps: int = 96) -> np.ndarray:
    """Shaded normals above colour, one column per view, saved as a PNG; returns the image."""
    images = render_views(model, views, resolution=resolution, steps=steps)
    image = np.concatenate([images["normals"], images["colour"]], 0)
    save_png(path, image)
    return image
