"""Where the proxy nodes of a hierarchical proxy-node field go: a tree placed from the shape (numpy, offline).

Level 0 is one root at the centre whose radius covers the whole box [-1, 1]^3, so every query has at least
one node. Each later level refines its parent's region: the candidate points (surface samples plus points
just inside the surface) are split among the parents by nearest parent, and each parent gets
`branching = N_l / N_(l-1)` children by farthest-point sampling inside its own region. A node's radius of
influence is `radius_scale` times the farthest candidate of its Voronoi cell at its level (so every
candidate point is covered, with overlap), and at least `radius_scale` times the distance to its nearest
sibling (so neighbours overlap where candidates are sparse).
"""
from __future__ import annotations

import dataclasses

import numpy as np

ROOT_RADIUS = 2.0 * np.sqrt(3.0)  # twice the half-diagonal of [-1, 1]^3: the root's weight never vanishes


@dataclasses.dataclass
class Tree:
    positions: list[np.ndarray]  # per level (N_l, 3)
    radii: list[np.ndarray]  # per level (N_l,)
    parents: list[np.ndarray]  # per level (N_l,) index into level l-1 (-1 for the root)


def farthest_points(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `count` points picked by farthest-point sampling (first one at random). With fewer points
    than asked, points are reused (the caller nudges duplicates apart)."""
    if len(points) <= count:
        extra = rng.integers(0, len(points), count - len(points)) if len(points) else np.zeros(0, np.int64)
        return np.concatenate([np.arange(len(points)), extra]).astype(np.int64)
    chosen = np.empty(count, np.int64)
    chosen[0] = rng.integers(len(points))
    dist = np.linalg.norm(points - points[chosen[0]], axis=-1)
    for i in range(1, count):
        chosen[i] = int(dist.argmax())
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[i]], axis=-1))
    return chosen


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(centres).query(points)[1]


def place_tree(candidates: np.ndarray, level_sizes, *, radius_scale: float = 1.5, seed: int = 0) -> Tree:
    """Nodes for levels of `level_sizes` (the first must be 1, each next a multiple of the one before)."""
    rng = np.random.default_rng(seed)
    positions, radii, parents = [np.zeros((1, 3))], [np.array([ROOT_RADIUS])], [np.array([-1])]
    for size in level_sizes[1:]:
        prev = positions[-1]
        branching = size // len(prev)
        owner = _nearest(candidates, prev) if len(prev) > 1 else np.zeros(len(candidates), np.int64)
        level, parent = [], []
        for j in range(len(prev)):
            region = candidates[owner == j]
            if len(region) == 0:  # a parent with no candidates keeps its children on itself
                region = prev[j:j + 1]
            picked = region[farthest_points(region, branching, rng)]
            level.append(picked)
            parent.append(np.full(branching, j))
        level = np.concatenate(level)
        level = _separate_duplicates(level, rng)
        owner_here = _nearest(candidates, level)
        cell = np.zeros(len(level))
        np.maximum.at(cell, owner_here, np.linalg.norm(candidates - level[owner_here], axis=-1))
        gap = _nearest_sibling_distance(level)
        positions.append(level)
        radii.append(radius_scale * np.maximum(cell, gap))
        parents.append(np.concatenate(parent))
    return Tree(positions, radii, parents)


def _separate_duplicates(points: np.ndarray, rng: np.random.Generator, eps: float = 1e-3) -> np.ndarray:
    _, first, counts = np.unique(points.round(9), axis=0, return_index=True, return_counts=True)
    if (counts == 1).all():
        return points
    keep = np.zeros(len(points), bool)
    keep[first] = True
    points = points.copy()
    points[~keep] += rng.normal(0.0, eps, (int((~keep).sum()), 3))
    return points


def _nearest_sibling_distance(points: np.ndarray) -> np.ndarray:
    if len(points) < 2:
        return np.full(len(points), ROOT_RADIUS)
    from scipy.spatial import cKDTree

    return cKDTree(points).query(points, k=2)[0][:, 1]


def candidate_points(shape, count: int, *, inside_fraction: float = 0.25, depth: float = 0.05,
                     seed: int = 0) -> np.ndarray:
    """Points on the surface, and a share just inside it (moved inward along the normal, kept where the exact
    SDF says inside), from which the nodes are picked."""
    from flaxzoo.data import meshes

    rng = np.random.default_rng(seed)
    surface, normals, _ = meshes.sample_surface(shape, count, rng)
    if shape.is_point_cloud or inside_fraction <= 0:
        return surface
    n_in = int(count * inside_fraction)
    moved = surface[:n_in] - normals[:n_in] * rng.uniform(0.2, 1.0, (n_in, 1)) * depth
    inside = moved[meshes.signed_distance(shape, moved) < 0]
    return np.concatenate([surface[n_in:], inside]) if len(inside) else surface
