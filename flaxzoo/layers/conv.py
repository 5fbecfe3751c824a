"""2-D convolutions (NHWC, HWIO kernels) whose parameters carry logical axis names.

Thin factories over `nnx.Conv` / `nnx.ConvTranspose`, so kernel orientation and padding
are exactly flax's: a checkpoint written by a flax Linen model loads without any flip.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import param_init

CONV_AXES = (None, None, "conv_in", "conv_out")


def conv2d(in_features: int, out_features: int, kernel_size: int | tuple[int, int] = 3, *, stride: int = 1,
           use_bias: bool = True, padding: str = "SAME",
           kernel_init: Callable = host_init.lecun_normal(),
           dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs) -> nnx.Conv:
    """`nnx.Conv` with kernel axes (None, None, conv_in, conv_out); flax's default init (lecun_normal, zero bias),
    sampled on the host so that building a model compiles nothing."""
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    return nnx.Conv(in_features, out_features, k, strides=(stride, stride), padding=padding, use_bias=use_bias,
                    kernel_init=param_init(kernel_init, CONV_AXES),
                    bias_init=param_init(host_init.constant(0.0), ("conv_out",)),
                    dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def conv_transpose2d(in_features: int, out_features: int, kernel_size: int | tuple[int, int] = 2, *, stride: int = 2,
                     use_bias: bool = True, padding: str = "SAME",
                     kernel_init: Callable = host_init.lecun_normal(),
                     dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs) -> nnx.ConvTranspose:
    """`nnx.ConvTranspose` (transpose_kernel=False, flax orientation: out[2i+a] uses K[1-a] for k=s=2).

    PyTorch/TF transposed-conv weights need a spatial flip and an in/out swap to load here.
    """
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    return nnx.ConvTranspose(in_features, out_features, k, strides=(stride, stride), padding=padding,
                             use_bias=use_bias, kernel_init=param_init(kernel_init, CONV_AXES),
                             bias_init=param_init(host_init.constant(0.0), ("conv_out",)),
                             dtype=dtype, param_dtype=param_dtype, rngs=rngs)
