"""Editing a proxy-node field: move, rotate or scale one node or a whole subtree.

A node's content is read in its own frame (u = R^T (x - p) / (s r)), so changing p, R or s carries the
local shape and colour with it. An edit transforms the chosen node and all its descendants about the
chosen node's position: p <- c + s_e R_e (p - c) + translate, R <- R_e R, s <- s_e s. Codes are not
touched. Outside the supports (t < 1) of the moved nodes, before and after, the field is unchanged:
weights vanish there and the k nodes per level are chosen by t (see proxy_field.py).
"""
from __future__ import annotations

import numpy as np
import jax.numpy as jnp
from flax import nnx

from flaxzoo.validate import InputError


def subtree(model, level: int, index: int) -> dict[int, np.ndarray]:
    """{level: node indices} of node (level, index) and all its descendants."""
    levels = len(model.level_sizes)
    if not 0 <= level < levels:
        raise InputError(f"This field has levels 0..{levels - 1}; got level {level}.")
    if not 0 <= index < model.level_sizes[level]:
        raise InputError(f"Level {level} has nodes 0..{model.level_sizes[level] - 1}; got node {index}.")
    chosen = {level: np.array([index])}
    for deeper in range(level + 1, levels):
        parents = np.asarray(model.parents[deeper][...])
        chosen[deeper] = np.flatnonzero(np.isin(parents, chosen[deeper - 1]))
    return chosen


def rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def transform_subtree(model, level: int, index: int, *, translate=(0.0, 0.0, 0.0), rotate=None, scale: float = 1.0,
                      whole_subtree: bool = True):
    """A copy of `model` with node (level, index) (and its descendants) moved; returns (edited, moved nodes)."""
    rot = np.eye(3) if rotate is None else np.asarray(rotate, np.float64)
    if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6):
        raise InputError(f"rotate must be a 3x3 rotation matrix; got {np.asarray(rotate).tolist()}.")
    if not scale > 0:
        raise InputError(f"scale must be positive; got {scale}.")
    moved = subtree(model, level, index) if whole_subtree else {level: subtree(model, level, index)[level]}
    edited = nnx.clone(model)
    centre = np.asarray(model.positions[level][...])[index]
    for lv, idx in moved.items():
        p = np.asarray(edited.positions[lv][...]).copy()
        r = np.asarray(edited.rotations[lv][...]).copy()
        s = np.asarray(edited.scales[lv][...]).copy()
        p[idx] = centre + scale * (p[idx] - centre) @ rot.T + np.asarray(translate)
        r[idx] = rot @ r[idx]
        s[idx] = s[idx] * scale
        edited.positions[lv][...] = jnp.asarray(p, jnp.float32)
        edited.rotations[lv][...] = jnp.asarray(r, jnp.float32)
        edited.scales[lv][...] = jnp.asarray(s, jnp.float32)
    return edited, moved


def support(model, nodes: dict[int, np.ndarray], points) -> np.ndarray:
    """True where a point lies inside the support (t < 1) of any of `nodes` of `model`."""
    points = np.asarray(points, np.float64)
    inside = np.zeros(len(points), bool)
    for lv, idx in nodes.items():
        p = np.asarray(model.positions[lv][...], np.float64)[idx]
        r = (np.asarray(model.radii[lv][...]) * np.asarray(model.scales[lv][...]))[idx]
        d = np.linalg.norm(points[:, None] - p[None], axis=-1) / r[None]
        inside |= (d < 1.0).any(-1)
    return inside
