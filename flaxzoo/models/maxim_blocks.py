"""MAXIM's UNet blocks: encoder, decoder, bottleneck, cross-gating, supervised attention, resize-conv.

Parameter names are descriptive; `official_names()` gives the flax Linen names of the released
checkpoints (e.g. `conv_in` is `Conv_0`, `rcab.1` is `channel_attention_block_11`), which the
converter in `flaxzoo.models.convert.maxim` follows.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.channel_attention import RCAB, RDCAB
from flaxzoo.layers.conv import conv2d, conv_transpose2d
from flaxzoo.layers.gating import LN_EPS, MultiAxisGmlpBlock, SpatialGatingWeights
from flaxzoo.layers.linear import Linear
from flaxzoo.layers.mlp import gelu_tanh
from flaxzoo.layers.norm import LayerNorm
from flaxzoo.layers.resize import resize_bilinear

Size2 = tuple[int, int]
lecun = host_init.lecun_normal()  # flax's Dense default, used by the cross-gating projections
zeros = host_init.constant(0.0)


class CrossGatingBlock(nnx.Module):
    """Two signals gate each other: x' = out_x(x * gate(y)) + y' + x, y' = out_y(y * gate(x)) + y.

    With `upsample_y` the gating signal y comes from the level below and is first doubled in size
    by a 2x2 stride-2 transposed conv. Returns (x', y').
    """

    def __init__(self, x_features: int, y_features: int, features: int, *, block_size: Size2, grid_size: Size2,
                 upsample_y: bool, use_bias: bool = True, dropout_rate: float = 0.0, dtype=None, rngs: nnx.Rngs):
        kw = dict(use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.upsample_y = conv_transpose2d(y_features, features, 2, stride=2, **kw) if upsample_y else None
        self.conv_x = conv2d(x_features, features, 1, **kw)
        self.conv_y = conv2d(features if upsample_y else y_features, features, 1, **kw)
        gate_kw = dict(block_size=block_size, grid_size=grid_size, dropout_rate=dropout_rate, **kw)
        for b in ("x", "y"):
            setattr(self, f"norm_{b}", LayerNorm(features, eps=LN_EPS, dtype=dtype, rngs=rngs))
            setattr(self, f"in_project_{b}", Linear(features, features, axes=("embed", "mlp"),
                                                            kernel_init=lecun, bias_init=zeros, **kw))
            setattr(self, f"gating_{b}", SpatialGatingWeights(features, **gate_kw))
            setattr(self, f"out_project_{b}", Linear(features, features, axes=("mlp", "embed"),
                                                             kernel_init=lecun, bias_init=zeros, **kw))
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs if dropout_rate > 0 else None)

    def official_names(self):
        return {"upsample_y": "ConvTranspose_0", "conv_x": "Conv_0", "conv_y": "Conv_1",
                "norm_x": "LayerNorm_x", "norm_y": "LayerNorm_y",
                "gating_x": "SplitHeadMultiAxisGating_x", "gating_y": "SplitHeadMultiAxisGating_y"}

    def __call__(self, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.upsample_y is not None:
            y = self.upsample_y(y)
        x = self.conv_x(x)
        y = self.conv_y(y)
        if x.shape != y.shape:
            raise ValueError(f"Cross-gating inputs differ in shape: {x.shape} vs {y.shape}.")
        shortcut_x, shortcut_y = x, y
        # The gates are computed from, and applied to, the projected signals LN -> Dense -> gelu.
        x = gelu_tanh(self.in_project_x(self.norm_x(x)))
        y = gelu_tanh(self.in_project_y(self.norm_y(y)))
        gx, gy = self.gating_x(x), self.gating_y(y)
        y = self.dropout(self.out_project_y(y * gx)) + shortcut_y
        x = self.dropout(self.out_project_x(x * gy)) + y + shortcut_x
        return x, y


class UNetEncoderBlock(nnx.Module):
    """concat(x, skip) -> 1x1 conv -> num_groups x [MAB, RCAB] -> + shortcut -> [cross-gate with enc+dec] -> [down].

    Returns (downsampled, full-resolution) when `downsample`, else the full-resolution features.
    The 4x4 stride-2 downsampling conv keeps the channel count.
    """

    def __init__(self, in_features: int, features: int, *, block_size: Size2, grid_size: Size2, num_groups: int = 1,
                 block_gmlp_factor: int = 2, grid_gmlp_factor: int = 2, input_proj_factor: int = 2,
                 channels_reduction: int = 4, dropout_rate: float = 0.0, downsample: bool = True,
                 use_global_mlp: bool = True, use_bias: bool = True, use_cross_gating: bool = False,
                 dtype=None, rngs: nnx.Rngs):
        kw = dict(use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.conv_in = conv2d(in_features, features, 1, **kw)
        self.mab = nnx.List([
            MultiAxisGmlpBlock(features, block_size=block_size, grid_size=grid_size,
                               block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                               input_proj_factor=input_proj_factor, dropout_rate=dropout_rate, **kw)
            for _ in range(num_groups)] if use_global_mlp else [])
        # lrelu_slope is not forwarded to RCAB by the reference: the slope is always 0.2.
        self.rcab = nnx.List([RCAB(features, reduction=channels_reduction, lrelu_slope=0.2, **kw)
                              for _ in range(num_groups)])
        self.cross_gating = (CrossGatingBlock(features, features, features, block_size=block_size,
                                              grid_size=grid_size, upsample_y=False, dropout_rate=dropout_rate, **kw)
                             if use_cross_gating else None)
        self.downsample = conv2d(features, features, 4, stride=2, **kw) if downsample else None

    def official_names(self):
        return {"conv_in": "Conv_0", "downsample": "Conv_1", "cross_gating": "cross_gating_block",
                "mab": "SplitHeadMultiAxisGmlpLayer_{i}",
                "rcab": "channel_attention_block_1{i}"}  # sic: an f-string without "_" in the reference

    def __call__(self, x, skip=None, enc=None, dec=None):
        if skip is not None:
            x = jnp.concatenate([x, skip], axis=-1)
        x = self.conv_in(x)
        shortcut = x
        for g in range(len(self.rcab)):
            if len(self.mab):
                x = self.mab[g](x)
            x = self.rcab[g](x)
        x = x + shortcut
        if enc is not None and dec is not None:
            x, _ = self.cross_gating(x, enc + dec)
        if self.downsample is not None:
            return self.downsample(x), x
        return x


class UNetDecoderBlock(nnx.Module):
    """2x2 stride-2 transposed conv, then an encoder block (no downsampling) with the bridge as skip."""

    def __init__(self, in_features: int, bridge_features: int, features: int, *, block_size: Size2,
                 grid_size: Size2, num_groups: int = 1, block_gmlp_factor: int = 2, grid_gmlp_factor: int = 2,
                 channels_reduction: int = 4, dropout_rate: float = 0.0, use_global_mlp: bool = True,
                 use_bias: bool = True, dtype=None, rngs: nnx.Rngs):
        self.upsample = conv_transpose2d(in_features, features, 2, stride=2, use_bias=use_bias, dtype=dtype, rngs=rngs)
        # The reference does not forward input_proj_factor here: the nested block uses the default 2.
        self.block = UNetEncoderBlock(features + bridge_features, features, block_size=block_size,
                                      grid_size=grid_size, num_groups=num_groups,
                                      block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                                      input_proj_factor=2, channels_reduction=channels_reduction,
                                      dropout_rate=dropout_rate, downsample=False, use_global_mlp=use_global_mlp,
                                      use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"upsample": "ConvTranspose_0", "block": "UNetEncoderBlock_0"}

    def __call__(self, x, bridge):
        return self.block(self.upsample(x), skip=bridge)


class BottleneckBlock(nnx.Module):
    """1x1 conv -> num_groups x [MAB, RDCAB] -> + shortcut."""

    def __init__(self, in_features: int, features: int, *, block_size: Size2, grid_size: Size2, num_groups: int = 1,
                 block_gmlp_factor: int = 2, grid_gmlp_factor: int = 2, input_proj_factor: int = 2,
                 channels_reduction: int = 4, dropout_rate: float = 0.0, use_bias: bool = True, dtype=None,
                 rngs: nnx.Rngs):
        kw = dict(use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.input_proj = conv2d(in_features, features, 1, **kw)
        self.mab = nnx.List([
            MultiAxisGmlpBlock(features, block_size=block_size, grid_size=grid_size,
                               block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                               input_proj_factor=input_proj_factor, dropout_rate=dropout_rate, **kw)
            for _ in range(num_groups)])
        self.rdcab = nnx.List([RDCAB(features, reduction=channels_reduction, **kw) for _ in range(num_groups)])

    def official_names(self):
        return {"mab": "SplitHeadMultiAxisGmlpLayer_{i}", "rdcab": "channel_attention_block_1_{i}"}

    def __call__(self, x):
        x = self.input_proj(x)
        shortcut = x
        for mab, rdcab in zip(self.mab, self.rdcab):
            x = rdcab(mab(x))
        return x + shortcut


class SupervisedAttention(nnx.Module):
    """MPRNet's SAM: image = conv(x) + input image; features = conv(x) * sigmoid(conv(image)) + x."""

    def __init__(self, features: int, num_outputs: int = 3, *, use_bias: bool = True, dtype=None, rngs: nnx.Rngs):
        kw = dict(use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.num_outputs = num_outputs
        self.conv_features = conv2d(features, features, 3, **kw)
        self.conv_image = conv2d(features, num_outputs, 3, **kw)
        self.conv_attention = conv2d(num_outputs, features, 3, **kw)

    def official_names(self):
        return {"conv_features": "Conv_0", "conv_image": "Conv_1", "conv_attention": "Conv_2"}

    def __call__(self, x, x_image):
        image = self.conv_image(x)
        if self.num_outputs == 3:  # the reference adds the input residual only for 3-channel outputs
            image = image + x_image
        features = self.conv_features(x) * jax.nn.sigmoid(self.conv_attention(image))
        return features + x, image


def resize_shape(h: int, w: int, ratio: float) -> tuple[int, int]:
    """The reference's target size: h // (1/ratio) when shrinking, h * ratio when growing."""
    if ratio < 1:
        k = int(round(1 / ratio))
        return h // k, w // k
    if float(ratio).is_integer():  # h * 2 rather than int(h * 2.0): also exact for symbolic (jax.export) sizes
        return h * int(ratio), w * int(ratio)
    return int(h * ratio), int(w * ratio)


class ResizeConv(nnx.Module):
    """MAXIM's UpSampleRatio: bilinear resize by a power-of-two ratio, then a 1x1 conv.

    `jax.image.resize` antialiases when shrinking (triangle kernel widened by the factor), as the
    reference does; that is neither average pooling nor TF's default resize. `resize_bilinear` computes the
    same numbers with a few taps per pixel instead of jax's dense (output x input) matrices, whose cost grew
    as the cube of the side.
    """

    def __init__(self, in_features: int, features: int, ratio: float, *, use_bias: bool = True, dtype=None,
                 rngs: nnx.Rngs):
        self.ratio = float(ratio)
        self.conv = conv2d(in_features, features, 1, use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"conv": "Conv_0"}

    def __call__(self, x):
        n, h, w, c = x.shape
        th, tw = resize_shape(h, w, self.ratio)
        if self.ratio != 1:  # ratio 1 keeps the size; said so, since symbolic sizes cannot be compared
            x = resize_bilinear(x, th, tw)
        return self.conv(x)
