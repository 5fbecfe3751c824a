"""Bilinear resize by an integer factor as a few taps per pixel: `jax.image.resize`'s numbers, linear cost.

`jax.image.resize(method="bilinear")` contracts each spatial axis with a dense (output x input) weight matrix,
so one resize of an n x n image costs O(n^3) and its share of a model grows with the image (MAXIM's cost
per pixel rose with the size, BENCHMARKS.md). Shrinking or growing by an integer factor s, each output pixel
reads a fixed window: 2s inputs (shrinking: the triangle kernel widened by s, as jax antialiases) or 2
(growing). Same weights, same edge rule (out-of-image taps dropped and the rest renormalised), computed as
strided window sums: equal to `jax.image.resize` to float32 rounding (tests/test_resize.py).

Anything else (a factor that does not divide the size, an odd shrink factor, symbolic export sizes) goes to
`jax.image.resize` itself.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _shrink_kernel(s: int) -> np.ndarray:
    """The 2s weights of one output pixel: the triangle max(0, 1 - |d| / s) at the inputs' offsets d from its centre."""
    return 1 - np.abs(np.arange(2 * s) - s + 0.5) / s


def _shrink_axis(x: jax.Array, axis: int, s: int) -> jax.Array:
    """Shrink `axis` (length L, a multiple of the even factor s) to L / s.

    Output i is centred on input (i + 1/2) s - 1/2, so it reads inputs i s - s/2 ... i s + 3s/2 - 1: after s/2
    zeros of padding on each side, tap t of every output is one strided slice (start t, step s), and the
    output is the 2s slices weighted and summed (one elementwise loop for XLA)."""
    n = x.shape[axis] // s
    k = _shrink_kernel(s)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (s // 2, s // 2)
    xp = jnp.pad(x, pad)
    out = sum(jax.lax.slice_in_dim(xp, t, t + (n - 1) * s + 1, stride=s, axis=axis) * jnp.asarray(k[t], x.dtype)
              for t in range(2 * s))
    # The weights inside the image: s everywhere but at the two edges, where the zero padding fell.
    inside = np.pad(np.ones(n * s), s // 2)
    norm = sum(inside[t:t + (n - 1) * s + 1:s] * k[t] for t in range(2 * s))
    shape = [1] * out.ndim
    shape[axis] = n
    return out * jnp.asarray((1 / norm).reshape(shape), x.dtype)


def _grow_axis(x: jax.Array, axis: int, s: int) -> jax.Array:
    """Grow `axis` (length L) to L s: output q s + r sits at input q + f_r, f_r = (r + 1/2) / s - 1/2, and
    mixes the two inputs around it; at the edges the missing one is dropped, the same as repeating the edge."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    xp = jnp.pad(x, pad, mode="edge")  # xp[q + 1] = x[q]
    prev, here, nxt = (jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i in range(3))
    phases = []
    for r in range(s):
        f = (r + 0.5) / s - 0.5
        neighbour, w = (nxt, f) if f >= 0 else (prev, -f)
        phases.append(here * jnp.asarray(1 - w, x.dtype) + neighbour * jnp.asarray(w, x.dtype))
    out = jnp.stack(phases, axis=axis + 1)
    return out.reshape(x.shape[:axis] + (n * s,) + x.shape[axis + 1:])


def _factor(n_in, n_out) -> tuple[str, int] | None:
    """('shrink', s) or ('grow', s) where the fast path is exact; None where jax.image.resize must do it."""
    if not (isinstance(n_in, int) and isinstance(n_out, int)) or n_in == n_out:
        return None
    if n_in % n_out == 0 and (n_in // n_out) % 2 == 0:
        return "shrink", n_in // n_out
    if n_out % n_in == 0:
        return "grow", n_out // n_in
    return None


def resize_bilinear(x: jax.Array, height, width) -> jax.Array:
    """`jax.image.resize(x, (n, height, width, c), "bilinear")` for an NHWC batch, in linear time where it can."""
    n, h, w, c = x.shape
    factors = (_factor(h, height), _factor(w, width))
    if any(f is None and size_in != size_out for f, size_in, size_out in zip(factors, (h, w), (height, width))):
        return jax.image.resize(x, (n, height, width, c), method="bilinear")
    out_dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32  # as jax.image.resize
    x = x.astype(jnp.promote_types(out_dtype, jnp.float32))  # bf16 in: the sums in float32, as its einsums
    for axis, factor in ((1, factors[0]), (2, factors[1])):
        if factor is not None:
            kind, s = factor
            x = _shrink_axis(x, axis, s) if kind == "shrink" else _grow_axis(x, axis, s)
    return x.astype(out_dtype)
