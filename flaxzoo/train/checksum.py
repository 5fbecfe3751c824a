"""Checksums of (possibly sharded, possibly multi-process) jax arrays, computed on device.

Each leaf's bits are read as unsigned integers and summed twice modulo 2**32: once plainly and
once mixed with each element's position (so swapped values change it too). Integer sums are
exact whatever the reduction order, so the result does not depend on the mesh the array lives
on: a checkpoint saved on one mesh verifies on another. The sums are one jitted collective, so
every process gets the same numbers. The same pass says whether each leaf is all finite.
"""
from __future__ import annotations

import functools
import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

_UINT = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}


def _bits(x: jax.Array) -> jax.Array:
    """The raw bits of x as uint32 (64-bit values become two words along a new last axis)."""
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    if x.dtype == jnp.bool_:
        x = x.astype(jnp.uint8)
    return jax.lax.bitcast_convert_type(x, _UINT[x.dtype.itemsize]).astype(jnp.uint32)


def _leaf_sums(x: jax.Array) -> jax.Array:
    bits = _bits(x)
    # Each element's flat (row-major) index, built from iotas so a sharded array is never reshaped.
    index = jnp.zeros(bits.shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(bits.ndim)):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, bits.shape, axis) * jnp.uint32(stride % 2**32)
        stride *= bits.shape[axis]
    mixed = (bits ^ (index * jnp.uint32(0x9E3779B9))) * jnp.uint32(0x85EBCA6B)
    mixed = mixed ^ (mixed >> 13)
    finite = jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else True
    return jnp.stack([jnp.sum(bits, dtype=jnp.uint32), jnp.sum(mixed, dtype=jnp.uint32), jnp.uint32(finite)])


@functools.partial(jax.jit, static_argnames="out_sharding")
def _all_sums(leaves, out_sharding=None):
    sums = jnp.stack([_leaf_sums(x) for x in leaves]) if leaves else jnp.zeros((0, 3), jnp.uint32)
    return sums if out_sharding is None else jax.lax.with_sharding_constraint(sums, out_sharding)


def _replicated(leaves) -> NamedSharding | None:
    for x in leaves:
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, NamedSharding):
            return NamedSharding(sharding.mesh, PartitionSpec())
    return None


def array_checksums(tree) -> dict[str, list]:
    """{leaf path: [shape, dtype, plain sum, position-mixed sum, all finite]} for every array in `tree`."""
    paths_leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    # One program per set of devices (a jitted computation cannot mix arrays committed to different ones).
    groups: dict = {}
    for i, (_, leaf) in enumerate(paths_leaves):
        devices = getattr(leaf, "sharding", None)
        key = frozenset(d.id for d in devices.device_set) if devices is not None else None
        groups.setdefault(key, []).append(i)
    sums = [None] * len(paths_leaves)
    for indices in groups.values():
        leaves = [paths_leaves[i][1] for i in indices]
        out = np.asarray(jax.device_get(_all_sums(leaves, out_sharding=_replicated(leaves))))
        for i, s in zip(indices, out):
            sums[i] = s
    return {jax.tree_util.keystr(path): [list(leaf.shape), str(leaf.dtype), int(s[0]), int(s[1]), bool(s[2])]
            for (path, leaf), s in zip(paths_leaves, sums)}


def json_checksum(value) -> str:
    """sha256 of a JSON-serialisable value (keys sorted, so dict order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
