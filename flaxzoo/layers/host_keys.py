"""Derive NNX's per-parameter keys on the host while a model is built.

Every `rngs.params()` of an NNX layer is `jax.random.fold_in(key, count)` followed by `count += 1`: two
eager XLA dispatches per parameter, and on the first model of a process five one-off compilations
(0.2 s of Swin-T's 0.5 s `create_model` on the 2-core CPU). While `host_keys(rngs)` is active, the
streams of `rngs` compute the same threefry fold-in in Python integers instead and hand out the same
keys, bit for bit; on exit the counts are written back, so `rngs` ends exactly where NNX would have
left it. Streams this cannot mirror (another PRNG implementation, batched or traced keys) are left
to NNX.
"""
from __future__ import annotations

import contextlib
import threading

import jax
import numpy as np
from flax import nnx

_MASK = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # Threefry's key-schedule constant


def _rotl(v: int, r: int) -> int:
    return ((v << r) | (v >> (32 - r))) & _MASK


def threefry2x32(key: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), as `jax.random` runs it: one 64-bit block
    `block` encrypted under `key`, both as pairs of uint32."""
    ks = (key[0], key[1], key[0] ^ key[1] ^ _PARITY)
    x0, x1 = (block[0] + ks[0]) & _MASK, (block[1] + ks[1]) & _MASK
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = (x0 + x1) & _MASK
            x1 = _rotl(x1, r) ^ x0
        x0 = (x0 + ks[(i + 1) % 3]) & _MASK
        x1 = (x1 + ks[(i + 2) % 3] + i + 1) & _MASK
    return x0, x1


def fold_in(key: tuple[int, int], data: int) -> tuple[int, int]:
    """`jax.random.key_data(jax.random.fold_in(k, data))` for a threefry key `k` with data `key`,
    `data` a uint32: jax seeds the block (0, data) and encrypts it under the key."""
    return threefry2x32(key, (0, data & _MASK))


_THREEFRY = "threefry2x32"
_local = threading.local()  # id(stream) -> [key data, count] of the streams made host-side here


class _HostStream(nnx.RngStream):
    """A stream of an active `host_keys`: keys from `fold_in` in Python, the count kept on the host."""

    def __call__(self) -> jax.Array:
        self.count._check_can_update()
        state = _local.streams[id(self)]
        key, count = state
        state[1] = count + 1
        return jax.random.wrap_key_data(np.array(fold_in(key, count), dtype=np.uint32), impl=_THREEFRY)

    # Streams made from this one (Dropout and DropPath fork at construction) are plain NNX streams.
    def split(self, k):
        return nnx.RngStream(jax.random.split(self(), k), tag=self.tag)

    def fork(self, *, split=None):
        if split is not None:
            return self.split(split)
        return nnx.RngStream(self(), tag=self.tag)

    def broadcast(self, k):
        key = self()
        shape = (k,) if isinstance(k, int) else tuple(k)
        return nnx.RngStream(jax.numpy.broadcast_to(key, shape + key.shape), tag=self.tag)


def _mirrorable(stream) -> bool:
    if type(stream) is not nnx.RngStream:
        return False
    key, count = stream.key.get_value(), stream.count.get_value()
    if isinstance(key, jax.core.Tracer) or isinstance(count, jax.core.Tracer) or key.shape != ():
        return False
    return str(jax.random.key_impl(key)) == _THREEFRY


@contextlib.contextmanager
def host_keys(rngs: nnx.Rngs | None):
    """Within this context the streams of `rngs` derive their keys on the host (the same keys)."""
    streams = [s for s in (vars(rngs).values() if isinstance(rngs, nnx.Rngs) else ()) if _mirrorable(s)]
    active = getattr(_local, "streams", None)
    if active is None:
        active = _local.streams = {}
    mine = [s for s in streams if id(s) not in active]  # a nested build keeps the outer state
    for s in mine:
        data = np.asarray(jax.random.key_data(s.key.get_value()))
        active[id(s)] = [(int(data[0]), int(data[1])), int(s.count.get_value())]
        s.__class__ = _HostStream
    try:
        yield rngs
    finally:
        for s in mine:
            s.__class__ = nnx.RngStream
            s.count.set_value(jax.device_put(np.uint32(active.pop(id(s))[1] & _MASK)))


def seed_rngs(seed: int) -> nnx.Rngs:
    """`nnx.Rngs(seed)` without compiling jax's seeding: the key data of `jax.random.key(seed)` for a
    non-negative 32-bit seed is (0, seed)."""
    if not 0 <= seed <= _MASK:
        return nnx.Rngs(seed)
    return nnx.Rngs(jax.random.wrap_key_data(np.array([0, seed], dtype=np.uint32), impl=_THREEFRY))
