"""Ground-truth samples of a shape's signed distance and colour, as a random-access source for the loop.

`make_source("field:builtin:ant", split)` (or `field:path/to/mesh.ply`) gives `FieldSamples`: `num_points`
points, computed once (exactly, `flaxzoo.data.meshes`) and shuffled, cut into examples of `chunk` points
each, so a batch of B examples is B * chunk points and grain's per-example cost stays small. The split
picks the seed: 'train' and 'test' are independent draws. Each point is one of
  surface   on the surface: sdf 0, outward normal, colour there (`surface` = 1)
  near      a surface point moved by N(0, near_sigma) per axis: exact sdf, colour of the nearest surface point
  uniform   uniform in [-1, 1]^3: exact sdf and colour
"""
from __future__ import annotations

import functools

import numpy as np

from flaxzoo.data import meshes
from flaxzoo.validate import InputError, check_positive_int

SPLIT_SEEDS = {"train": 0, "test": 1}


@functools.lru_cache(maxsize=4)
def field_samples(shape_spec: str, num_points: int, surface_fraction: float, near_fraction: float,
                  near_sigma: float, seed: int) -> dict[str, np.ndarray]:
    """All samples of one draw, as float32 arrays keyed points, sdf, normal, rgb, surface (cached)."""
    shape = meshes.load_shape(shape_spec)
    rng = np.random.default_rng(seed)
    n_surface = int(num_points * surface_fraction)
    n_near = int(num_points * near_fraction)
    n_uniform = num_points - n_surface - n_near
    surface, normals, colours = meshes.sample_surface(shape, n_surface, rng)
    base, _, _ = meshes.sample_surface(shape, n_near, rng)
    off_surface = np.concatenate([base + rng.normal(0.0, near_sigma, base.shape),
                                  rng.uniform(-1.0, 1.0, (n_uniform, 3))])
    sdf, off_colours = meshes.signed_distance_and_colour(shape, off_surface)
    out = {
        "points": np.concatenate([surface, off_surface]),
        "sdf": np.concatenate([np.zeros(n_surface), sdf]),
        "normal": np.concatenate([normals, np.zeros_like(off_surface)]),
        "rgb": np.concatenate([colours, off_colours]),
        "surface": np.concatenate([np.ones(n_surface), np.zeros(len(off_surface))]),
    }
    order = rng.permutation(num_points)
    return {k: np.ascontiguousarray(v[order], np.float32) for k, v in out.items()}


class FieldSamples:
    """Examples of `chunk` ground-truth points of one shape (see the module docstring)."""

    def __init__(self, split: str = "train", *, shape: str, num_points: int = 32768, chunk: int = 512,
                 surface_fraction: float = 0.4, near_fraction: float = 0.4, near_sigma: float = 0.02,
                 seed: int = 0):
        if split not in SPLIT_SEEDS:
            raise InputError(f"Field samples have splits {sorted(SPLIT_SEEDS)}; got {split!r}.")
        check_positive_int(num_points, "num_points")
        check_positive_int(chunk, "chunk")
        if num_points < chunk:
            raise InputError(f"num_points ({num_points}) must be at least one chunk ({chunk}).")
        if not (0 <= surface_fraction and 0 <= near_fraction and surface_fraction + near_fraction <= 1):
            raise InputError(f"surface_fraction + near_fraction must lie in [0, 1]; got {surface_fraction} + "
                             f"{near_fraction}.")
        self.chunk = chunk
        self.samples = field_samples(shape, num_points - num_points % chunk, float(surface_fraction),
                                     float(near_fraction), float(near_sigma), seed * 2 + SPLIT_SEEDS[split])

    def __len__(self) -> int:
        return len(self.samples["points"]) // self.chunk

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        s = slice(index * self.chunk, (index + 1) * self.chunk)
        return {k: v[s] for k, v in self.samples.items()}
