"""A serialized jax.export program (StableHLO + calling convention): loadable with
jax.export.deserialize, callable with no flaxzoo code, compiled for the platforms named at export."""
from __future__ import annotations

import jax

PLATFORMS = ("cpu", "cuda")


def to_bytes(fn, struct: jax.ShapeDtypeStruct, *, platforms=PLATFORMS) -> bytes:
    exported = jax.export.export(jax.jit(fn), platforms=tuple(platforms))(struct)
    return bytes(exported.serialize())
