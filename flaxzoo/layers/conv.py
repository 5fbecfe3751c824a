"""2-D convolutions (NHWC, HWIO kernels) whose parameters carry logical axis names.

Thin factories over `nnx.Conv` / `nnx.ConvTranspose`, so kernel orientation and padding
are exactly flax's: a checkpoint written by a flax Linen model loads without any flip.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import dense_operands, matmul_2d, param_init

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


def patch_conv(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """`conv(x)` for a non-overlapping patch conv (strides == kernel_size, VALID padding, H and W multiples of
    the patch) as one GEMM over the flattened patches: the same products and sums in another order.

    Why: XLA:CPU's weight gradient of the strided conv is a slow convolution (12 ms for Swin-T's 4x4 patch
    embedding at batch 8, 224x224, on the 2-core Xeon); the patches' x^T g is a plain GEMM (1 ms)."""
    kh, kw = conv.kernel_size
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    if (pair(conv.strides) != (kh, kw) or conv.padding != "VALID" or conv.feature_group_count != 1
            or pair(conv.kernel_dilation or 1) != (1, 1) or pair(conv.input_dilation or 1) != (1, 1)):
        raise ValueError(f"patch_conv needs a conv with strides == kernel_size {conv.kernel_size}, VALID padding, "
                         f"no dilation and one feature group; got strides {conv.strides}, padding {conv.padding!r}.")
    b, h, w, c = x.shape
    if h % kh or w % kw:
        raise ValueError(f"patch_conv needs H and W multiples of the patch {conv.kernel_size}, got {h}x{w}; "
                         f"pad first.")
    (x,), kernel, bias = dense_operands(conv, (x,))  # nnx.Conv promotes its operands as nnx.Linear does
    # (B, H/kh, kh, W/kw, kw, C) -> (B, H/kh, W/kw, kh, kw, C): the HWIO kernel's (kh, kw, C) order.
    patches = x.reshape(b, h // kh, kh, w // kw, kw, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        b, h // kh, w // kw, kh * kw * c)
    y = matmul_2d(conv, patches, kernel.reshape(kh * kw * c, -1))
    return y if bias is None else y + bias
