"""Dense layer whose parameters carry logical axis names.

Model code names axes from the zoo's vocabulary (`embed`, `mlp`, `heads`, ...);
`flaxzoo.train.sharding` maps those names onto mesh axes. Nothing here knows
about meshes.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init

# timm/PyTorch-style default: trunc_normal(0.02) weights, zero bias. Sampled on the host (see
# host_init): eager jax.random init compiles one program per parameter shape.
default_kernel_init = host_init.truncated_normal(stddev=0.02)


def param_init(init: Callable, axes: Sequence[str | None] | None):
    """Attach logical axis names to an initializer (or leave it bare if axes is None)."""
    # eager_sharding=False: creating a model must not need a mesh; shardings are applied
    # later, by the training loop, from the logical names (see flaxzoo.train.sharding).
    return init if axes is None else nnx.with_partitioning(init, tuple(axes), eager_sharding=False)


class Linear(nnx.Linear):
    """`nnx.Linear` with logical axis names on kernel (in_axis, out_axis) and bias (out_axis)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        axes: tuple[str | None, str | None] = ("embed", "mlp"),
        kernel_init: Callable = default_kernel_init,
        bias_init: Callable = host_init.constant(0.0),
        dtype=None,
        param_dtype=jnp.float32,
        precision: jax.lax.Precision | None = None,
        rngs: nnx.Rngs,
    ):
        super().__init__(
            in_features,
            out_features,
            use_bias=use_bias,
            kernel_init=param_init(kernel_init, axes),
            bias_init=param_init(bias_init, axes[1:]),
            dtype=dtype,
            param_dtype=param_dtype,
            precision=precision,
            rngs=rngs,
        )

    def __call__(self, inputs: jax.Array, out_sharding=None) -> jax.Array:
        """`nnx.Linear.__call__` as a 2-D GEMM (see `matmul_2d`); an explicit out_sharding or
        preferred_element_type keeps nnx's own call."""
        if out_sharding is not None or self.preferred_element_type is not None:
            return super().__call__(inputs, out_sharding=out_sharding)
        (inputs,), kernel, bias = dense_operands(self, (inputs,))
        y = matmul_2d(self, inputs, kernel)
        return y if bias is None else y + bias


def dense_operands(dense: nnx.Linear, xs):
    """(inputs, kernel, bias) of `dense`, promoted to its compute dtype as `nnx.Linear` does."""
    kernel = dense.kernel[...]
    bias = dense.bias[...] if dense.bias is not None else None
    *xs, kernel, bias = dense.promote_dtype((*xs, kernel, bias), dtype=dense.dtype)
    return xs, kernel, bias


def matmul_2d(dense: nnx.Linear | nnx.Conv, x, kernel):
    """x @ kernel over the last axis, as a 2-D GEMM: (..., in) is flattened to (rows, in) first.

    The same products and sums as the N-D dot_general. Why: the weight gradient of an N-D dot_general
    (autodiff's transpose rule) contracts over every leading axis at once, which XLA:CPU lowers with a
    physical transpose of the activation gradient; from the 2-D form it is a plain x^T g GEMM. One Swin
    stage-1 fc1 (25088 x 96 -> 384) forward and backward: 137 ms -> 49 ms on the 2-core Xeon, bit for bit."""
    lead = x.shape[:-1]
    y = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), kernel, (((1,), (0,)), ((), ())), precision=dense.precision)
    return y.reshape(*lead, kernel.shape[-1])


def dense_split(dense: nnx.Linear, x: jax.Array, parts: int = 2) -> list[jax.Array]:
    """`jnp.split(dense(x), parts, -1)` as one matmul per part: the same numbers, without copying the halves
    out of one wide output (on XLA:CPU a split is a copy of the whole activation)."""
    (x,), kernel, bias = dense_operands(dense, (x,))
    kernels = jnp.split(kernel, parts, axis=-1)
    biases = jnp.split(bias, parts) if bias is not None else [None] * parts
    return [matmul_2d(dense, x, k) + (0 if b is None else b) for k, b in zip(kernels, biases)]


def dense_concat(dense: nnx.Linear, xs: Sequence[jax.Array]) -> jax.Array:
    """`dense(jnp.concatenate(xs, -1))` as a sum of one matmul per part, without the concatenated copy. The
    sum over input features is split into the parts' partial sums, so it agrees to float rounding."""
    widths = [x.shape[-1] for x in xs]
    xs, kernel, bias = dense_operands(dense, xs)
    offsets = [sum(widths[:i]) for i in range(len(widths) + 1)]
    y = sum(matmul_2d(dense, x, kernel[offsets[i]:offsets[i + 1]]) for i, x in enumerate(xs))
    return y if bias is None else y + bias


def expert_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """(E, ..., d) @ (E, d, f) -> (E, ..., f), one matmul per leading expert, as a batched GEMM over each
    expert's flattened rows: the weight gradient is then a plain batched x^T g (see `matmul_2d`)."""
    e, *lead, d = x.shape
    y = jax.lax.dot_general(x.reshape(e, -1, d), w, (((2,), (1,)), ((0,), (0,))))
    return y.reshape(e, *lead, w.shape[-1])
