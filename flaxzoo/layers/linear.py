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
