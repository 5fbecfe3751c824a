"""Device mesh and logical-axis sharding rules.

Model code names parameter and activation axes from one vocabulary (`batch`, `embed`,
`mlp`, `heads`, `experts`, ...). The rules below map those names onto the mesh axes
`data`, `fsdp` and `model`; data, FSDP, tensor and expert parallelism are therefore
config switches, never model edits (the t5x / MaxText approach).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "model")

# logical name -> mesh axis (or axes, or None = replicated).
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("height", None),
    ("width", None),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("experts", "model"),
    ("vocab", "model"),
    ("conv_in", None),
    ("conv_out", "model"),
)


def make_mesh(shape: Mapping[str, int] | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh over `devices` (default: all) with axes data/fsdp/model.

    `shape` gives each axis a size; one axis may be -1 to take what is left, e.g.
    {"data": -1, "model": 2}. Axes are Auto: GSPMD propagates shardings from the logical
    annotations (`jax.make_mesh`'s Explicit default breaks that).
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = {name: 1 for name in MESH_AXES}
    sizes.update({"data": -1} if shape is None else dict(shape))
    unknown = set(sizes) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"Unknown mesh axes {sorted(unknown)}; use only {MESH_AXES}.")
    free = [k for k, v in sizes.items() if v == -1]
    if len(free) > 1:
        raise ValueError(f"Only one mesh axis may be -1, got {free}.")
    fixed = math.prod(v for v in sizes.values() if v != -1)
    if free:
        if len(devices) % fixed:
            raise ValueError(f"Mesh {sizes} does not fit {len(devices)} devices: {len(devices)} is not a multiple "
                             f"of {fixed}. Change the mesh sizes in the config.")
        sizes[free[0]] = len(devices) // fixed
    total = math.prod(sizes.values())
    if total != len(devices):
        raise ValueError(f"Mesh {sizes} needs {total} devices but {len(devices)} are available. "
                         f"Make the product of the mesh sizes equal the device count (or use -1 for one axis).")
    grid = np.asarray(devices, dtype=object).reshape([sizes[a] for a in MESH_AXES])
    return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def logical_to_spec(names: Sequence[str | None] | None, rules=DEFAULT_RULES, mesh: Mesh | None = None) -> PartitionSpec:
    """Translate logical axis names to a PartitionSpec; mesh axes of size 1 or already used are dropped."""
    if not names:
        return PartitionSpec()
    table = dict(rules)
    used: set[str] = set()
    out = []
    for name in names:
        target = table.get(name) if name is not None else None
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        axes = tuple(a for a in axes if a not in used and (mesh is None or mesh.shape[a] > 1))
        used.update(axes)
        out.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*out)


def _fits(spec: PartitionSpec, shape, mesh: Mesh) -> PartitionSpec:
    """Drop mesh axes that do not divide their dimension (small or odd-sized params stay replicated)."""
    fixed = []
    for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        size = math.prod(mesh.shape[a] for a in names)
        fixed.append(axes if names and dim % size == 0 else None)
    return PartitionSpec(*fixed)


def state_shardings(state: nnx.State, mesh: Mesh, rules=DEFAULT_RULES) -> nnx.State:
    """NamedSharding for every leaf of an NNX state, from the `out_sharding` logical names."""

    def one(leaf):
        meta = leaf.get_metadata() if isinstance(leaf, nnx.Variable) else {}
        value = leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf
        spec = _fits(logical_to_spec(meta.get("out_sharding"), rules, mesh), getattr(value, "shape", ()), mesh)
        sharding = NamedSharding(mesh, spec)
        return leaf.replace(sharding) if isinstance(leaf, nnx.Variable) else sharding

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def shard_model(model: nnx.Module, mesh: Mesh, rules=DEFAULT_RULES) -> nnx.Module:
    """Place a model's state on `mesh` according to its logical names (in place); returns the model."""
    state = nnx.state(model)
    shardings = state_shardings(state, mesh, rules)
    nnx.update(model, jax.device_put(state, shardings))
    return model


def batch_sharding(mesh: Mesh, ndim: int, rules=DEFAULT_RULES) -> NamedSharding:
    """Sharding for an input batch: leading axis over `batch`, the rest replicated."""
    return NamedSharding(mesh, logical_to_spec(("batch",) + (None,) * (ndim - 1), rules, mesh))
