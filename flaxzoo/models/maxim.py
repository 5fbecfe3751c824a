"""MAXIM: Multi-Axis MLP for image processing (Tu et al., CVPR 2022), all released variants.

A multi-stage, multi-scale UNet. Every stage encodes (MAB + RCAB blocks), runs a gMLP
bottleneck, cross-gates the skip connections with the global feature, decodes, and emits an
image at every supervision scale; later stages fuse the previous stage's supervised-attention
features and encoder/decoder features. The model returns `outputs[stage][scale]`, lowest
resolution first; the restored image is `outputs[-1][-1]`.

Inputs must be multiples of `size_multiple` (64 for the released block/grid sizes);
`flaxzoo.eval.restore` pads any image for you. Constructor fields are exactly the official
`MAXIM` config fields (plus `in_channels` and a compute `dtype`), with the official defaults;
the presets use the released configuration (3 supervision scales).
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers.conv import conv2d
from flaxzoo.models.maxim_blocks import (BottleneckBlock, CrossGatingBlock, ResizeConv, SupervisedAttention,
                                         UNetDecoderBlock, UNetEncoderBlock)
from flaxzoo.models.registry import register
from flaxzoo.validate import check_image_batch, check_rates, check_sizes

Size2 = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class MaximConfig:
    features: int = 64
    depth: int = 3
    num_stages: int = 2
    num_groups: int = 1
    use_bias: bool = True
    num_supervision_scales: int = 1
    lrelu_slope: float = 0.2  # kept for fidelity: the reference never forwards it to its blocks (always 0.2)
    use_global_mlp: bool = True
    use_cross_gating: bool = True
    high_res_stages: int = 2
    block_size_hr: Size2 = (16, 16)
    block_size_lr: Size2 = (8, 8)
    grid_size_hr: Size2 = (16, 16)
    grid_size_lr: Size2 = (8, 8)  # never read by the reference: low-res levels use block_size_lr as grid
    num_bottleneck_blocks: int = 1
    block_gmlp_factor: int = 2
    grid_gmlp_factor: int = 2
    input_proj_factor: int = 2
    channels_reduction: int = 4
    num_outputs: int = 3
    dropout_rate: float = 0.0
    in_channels: int = 3

    def level_sizes(self, level: int) -> tuple[Size2, Size2]:
        """(block_size, grid_size) at a UNet level. Reproduces the reference quirk: low-res levels use
        block_size_lr for the grid too."""
        if level < self.high_res_stages:
            return tuple(self.block_size_hr), tuple(self.grid_size_hr)
        return tuple(self.block_size_lr), tuple(self.block_size_lr)

    def channels(self, level: int) -> int:
        return (2 ** level) * self.features

    def size_multiple(self) -> Size2:
        """Smallest (h, w) multiple for which every blocking and downsampling divides exactly."""
        out = []
        for axis in range(2):
            m = 2 ** self.depth * self.block_size_lr[axis]  # bottleneck (block = grid = block_size_lr)
            for level in range(self.depth):
                block, grid = self.level_sizes(level)
                m = math.lcm(m, 2 ** level * block[axis], 2 ** level * grid[axis])
            out.append(m)
        return tuple(out)


class Stage(nnx.Module):
    """One UNet pass: input convs (+ fusion with the previous stage), encoder, bottleneck, cross-gated
    skips, decoder, and per-scale outputs (SAM for intermediate stages, a 3x3 conv for the last)."""

    def __init__(self, cfg: MaximConfig, index: int, *, dtype=None, rngs: nnx.Rngs):
        self.index = index
        self.depth = cfg.depth
        self.last = index == cfg.num_stages - 1
        C, D, nss = cfg.channels, cfg.depth, cfg.num_supervision_scales
        kw = dict(use_bias=cfg.use_bias, dtype=dtype, rngs=rngs)
        gmlp = dict(num_groups=cfg.num_groups, block_gmlp_factor=cfg.block_gmlp_factor,
                    grid_gmlp_factor=cfg.grid_gmlp_factor, channels_reduction=cfg.channels_reduction,
                    dropout_rate=cfg.dropout_rate)

        def sizes(i):
            b, g = cfg.level_sizes(i)
            return dict(block_size=b, grid_size=g)

        self.input_conv = nnx.List([conv2d(cfg.in_channels, C(i), 3, **kw) for i in range(nss)])
        fuse = index > 0
        self.input_fuse_sam = nnx.List([
            CrossGatingBlock(C(i), C(i), C(i), upsample_y=False, dropout_rate=cfg.dropout_rate, **sizes(i), **kw)
            for i in range(nss)] if fuse and cfg.use_cross_gating else [])
        self.input_catconv = nnx.List([conv2d(2 * C(i), C(i), 1, **kw)
                                       for i in range(nss)] if fuse and not cfg.use_cross_gating else [])
        self.encoder_block = nnx.List([
            UNetEncoderBlock((C(0) if i == 0 else C(i - 1)) + (C(i) if i < nss else 0), C(i),
                             input_proj_factor=cfg.input_proj_factor, use_global_mlp=cfg.use_global_mlp,
                             use_cross_gating=fuse, downsample=True, **gmlp, **sizes(i), **kw)
            for i in range(D)])
        lr = tuple(cfg.block_size_lr)
        self.global_block = nnx.List([
            BottleneckBlock(C(D - 1), C(D - 1), block_size=lr, grid_size=lr, input_proj_factor=cfg.input_proj_factor,
                            **gmlp, **kw)
            for _ in range(cfg.num_bottleneck_blocks)])
        # Resize-convs in the reference's call order (levels D-1..0, then sources j = 0..D-1).
        self.cross_resize = nnx.List([ResizeConv(C(j), C(i), 2.0 ** (j - i), **kw)
                                      for i in reversed(range(D)) for j in range(D)])
        self.cross_gating_block = nnx.List([
            CrossGatingBlock(D * C(i), C(min(i + 1, D - 1)), C(i), upsample_y=True, dropout_rate=cfg.dropout_rate,
                             **sizes(i), **kw)
            for i in range(D)] if cfg.use_cross_gating else [])
        self.skip_conv1x1 = nnx.List([conv2d(D * C(i), C(i), 1, **kw)
                                      for i in range(D)] if not cfg.use_cross_gating else [])
        self.skip_conv3x3 = nnx.List([conv2d(C(i), C(i), 3, **kw)
                                      for i in range(D)] if not cfg.use_cross_gating else [])
        # Decoder inputs: skip j of the production order is level D-1-j.
        self.decoder_resize = nnx.List([ResizeConv(C(D - 1 - j), C(i), 2.0 ** (D - j - 1 - i), **kw)
                                        for i in reversed(range(D)) for j in range(D)])
        self.decoder_block = nnx.List([
            UNetDecoderBlock(C(min(i + 1, D - 1)), D * C(i), C(i), use_global_mlp=cfg.use_global_mlp, **gmlp,
                             **sizes(i), **kw)
            for i in range(D)])
        self.sam = nnx.List([SupervisedAttention(C(i), cfg.num_outputs, **kw)
                             for i in range(nss)] if not self.last else [])
        self.output_conv = nnx.List([conv2d(C(i), cfg.num_outputs, 3, **kw) for i in range(nss)] if self.last else [])

    def official_names(self):
        s, d2 = self.index, self.depth ** 2
        names = {a: f"stage_{s}_{a}_{{i}}" for a in ("input_conv", "input_fuse_sam", "input_catconv", "encoder_block",
                                                    "global_block", "cross_gating_block", "decoder_block",
                                                    "output_conv")}
        names["sam"] = f"stage_{s}_supervised_attention_module_{{i}}"
        # Unnamed modules at the reference's top level are numbered in call order across stages.
        names["cross_resize"] = lambda r: f"UpSampleRatio_{2 * d2 * s + r}"
        names["decoder_resize"] = lambda r: f"UpSampleRatio_{2 * d2 * s + d2 + r}"
        names["skip_conv1x1"] = lambda i: f"Conv_{2 * self.depth * s + 2 * (self.depth - 1 - i)}"
        names["skip_conv3x3"] = lambda i: f"Conv_{2 * self.depth * s + 2 * (self.depth - 1 - i) + 1}"
        return names

    def __call__(self, shortcuts, sam_features=None, encs_prev=None, decs_prev=None):
        D = self.depth
        x_scales = []
        for i, conv in enumerate(self.input_conv):
            xs = conv(shortcuts[i])
            if sam_features is not None:
                if len(self.input_fuse_sam):
                    xs, _ = self.input_fuse_sam[i](xs, sam_features[i])
                else:
                    xs = self.input_catconv[i](jnp.concatenate([xs, sam_features[i]], axis=-1))
            x_scales.append(xs)

        x, encs = x_scales[0], []
        for i, block in enumerate(self.encoder_block):
            skip = x_scales[i] if i < len(x_scales) else None
            enc = encs_prev[i] if encs_prev is not None else None
            dec = decs_prev[i] if decs_prev is not None else None
            x, bridge = block(x, skip, enc, dec)
            encs.append(bridge)
        for block in self.global_block:
            x = block(x)

        global_feature, skips, r = x, {}, 0
        for i in reversed(range(D)):
            signal = jnp.concatenate([self.cross_resize[r + j](encs[j]) for j in range(D)], axis=-1)
            r += D
            if len(self.cross_gating_block):
                skips[i], global_feature = self.cross_gating_block[i](signal, global_feature)
            else:
                skips[i] = self.skip_conv3x3[i](self.skip_conv1x1[i](signal))

        outputs, decs, sams, r = [], {}, {}, 0
        for i in reversed(range(D)):
            signal = jnp.concatenate([self.decoder_resize[r + j](skips[D - 1 - j]) for j in range(D)], axis=-1)
            r += D
            x = self.decoder_block[i](x, signal)  # the decoder starts from the bottleneck output
            decs[i] = x
            if i < len(shortcuts):
                if self.last:
                    out = self.output_conv[i](x) + shortcuts[i]
                else:
                    sams[i], out = self.sam[i](x, shortcuts[i])
                outputs.append(out)
        return outputs, sams, encs, decs


class MAXIM(nnx.Module):
    """MAXIM with multi-stage, multi-scale supervision. Call: (N, H, W, C) -> outputs[stage][scale]."""

    # flaxzoo's forward programs compile MAXIM without XLA:CPU's YNNPACK fusions: 1.2x faster inference
    # (flaxzoo.compile_options)
    xla_options: ClassVar[dict] = {"cpu": {"infer": {"xla_cpu_experimental_ynn_fusion_type": ""}}}

    def __init__(self, *, features: int = 64, depth: int = 3, num_stages: int = 2, num_groups: int = 1,
                 use_bias: bool = True, num_supervision_scales: int = 1, lrelu_slope: float = 0.2,
                 use_global_mlp: bool = True, use_cross_gating: bool = True, high_res_stages: int = 2,
                 block_size_hr: Size2 = (16, 16), block_size_lr: Size2 = (8, 8), grid_size_hr: Size2 = (16, 16),
                 grid_size_lr: Size2 = (8, 8), num_bottleneck_blocks: int = 1, block_gmlp_factor: int = 2,
                 grid_gmlp_factor: int = 2, input_proj_factor: int = 2, channels_reduction: int = 4,
                 num_outputs: int = 3, dropout_rate: float = 0.0, in_channels: int = 3,
                 conv_init_scale: float = 1.0, dtype=None, rngs: nnx.Rngs | None = None):
        check_sizes("MAXIM", 1, features=features, depth=depth, num_stages=num_stages, num_groups=num_groups,
                    in_channels=in_channels, num_outputs=num_outputs, block_size_hr=block_size_hr,
                    block_size_lr=block_size_lr, grid_size_hr=grid_size_hr, grid_size_lr=grid_size_lr)
        check_rates("MAXIM", dropout_rate=dropout_rate)
        cfg = MaximConfig(features=features, depth=depth, num_stages=num_stages, num_groups=num_groups,
                          use_bias=use_bias, num_supervision_scales=num_supervision_scales, lrelu_slope=lrelu_slope,
                          use_global_mlp=use_global_mlp, use_cross_gating=use_cross_gating,
                          high_res_stages=high_res_stages, block_size_hr=tuple(block_size_hr),
                          block_size_lr=tuple(block_size_lr), grid_size_hr=tuple(grid_size_hr),
                          grid_size_lr=tuple(grid_size_lr), num_bottleneck_blocks=num_bottleneck_blocks,
                          block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                          input_proj_factor=input_proj_factor, channels_reduction=channels_reduction,
                          num_outputs=num_outputs, dropout_rate=dropout_rate, in_channels=in_channels)
        if not 1 <= num_supervision_scales <= depth:
            raise ValueError(f"num_supervision_scales must be in 1..depth={depth}, got {num_supervision_scales}.")
        if num_stages < 1:
            raise ValueError(f"num_stages must be at least 1, got {num_stages}.")
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        self.config = cfg
        self.stages = nnx.List([Stage(cfg, s, dtype=dtype, rngs=rngs) for s in range(num_stages)])
        if conv_init_scale != 1.0:
            # The official init (lecun_normal convs) makes a fresh model's outputs explode
            # (|output - input| in the hundreds), which slows training from scratch; a smaller
            # conv init keeps them near the input. Loaded checkpoints overwrite this anyway.
            for _, module in nnx.iter_graph(self):
                if isinstance(module, (nnx.Conv, nnx.ConvTranspose)):
                    module.kernel.set_value(module.kernel.get_value() * conv_init_scale)

    @property
    def size_multiple(self) -> Size2:
        return self.config.size_multiple()

    def official_names(self):
        return {"stages": None}  # stage modules live at the reference's top level

    def __call__(self, x: jax.Array) -> list[list[jax.Array]]:
        check_image_batch(x, name="MAXIM input", channels=self.config.in_channels, min_size=self.size_multiple,
                          multiple=self.size_multiple, size_hint="flaxzoo.eval.restore.restore_image pads any size.")
        n, h, w, c = x.shape
        # The reference's pyramid: 'nearest' halving picks pixel 2r+1 (quartering 4r+2), not the top-left one.
        shortcuts = [x] + [jax.image.resize(x, (n, h // 2 ** i, w // 2 ** i, c), method="nearest")
                           for i in range(1, self.config.num_supervision_scales)]
        outputs, sams, encs, decs = [], None, None, None
        for stage in self.stages:
            out, sams, encs, decs = stage(shortcuts, sams, encs, decs)
            outputs.append(out)
        return outputs


# --------------------------------------------------------------------------------------------------
# Presets. Variants as in the reference's Model(variant=...); the released checkpoints were run with
# num_supervision_scales=3, dropout 0, use_bias, 3 outputs, which the presets fix too.
_VARIANTS = {
    "s1": dict(features=32, num_stages=1), "s2": dict(features=32, num_stages=2),
    "s3": dict(features=32, num_stages=3), "m1": dict(features=64, num_stages=1),
    "m2": dict(features=64, num_stages=2), "m3": dict(features=64, num_stages=3),
}
_RELEASED = dict(depth=3, num_groups=2, num_bottleneck_blocks=2, block_gmlp_factor=2, grid_gmlp_factor=2,
                 input_proj_factor=2, channels_reduction=4, num_supervision_scales=3, dropout_rate=0.0,
                 use_bias=True, num_outputs=3)
_PARAMS = {"s1": 6_139_561, "s2": 14_176_178, "s3": 22_212_795, "m1": 19_464_265, "m2": 43_227_986,
           "m3": 66_991_707}
_CONVERTER = "flaxzoo.models.convert.maxim:convert"

# (variant, task, dataset dir, {benchmark: (PSNR, SSIM)}) from the official README.
_CHECKPOINTS = [
    ("s3", "Denoising", "SIDD", {"SIDD": (39.96, 0.960), "DND": (39.84, 0.954)}),
    ("s3", "Deblurring", "GoPro", {"GoPro": (32.86, 0.961), "HIDE": (32.83, 0.956)}),
    ("s3", "Deblurring", "REDS", {"REDS-val-300": (28.93, 0.865)}),
    ("s3", "Deblurring", "RealBlur_R", {"RealBlur-R": (39.45, 0.962)}),
    ("s3", "Deblurring", "RealBlur_J", {"RealBlur-J": (32.84, 0.935)}),
    ("s2", "Deraining", "Rain13k", {"Rain13k (mean of 5 test sets, Y channel)": (33.24, 0.933)}),
    ("s2", "Deraining", "Raindrop", {"Raindrop": (31.87, 0.935)}),
    ("s2", "Dehazing", "SOTS-Indoor", {"SOTS-Indoor": (38.11, 0.991)}),
    ("s2", "Dehazing", "SOTS-Outdoor", {"SOTS-Outdoor": (34.19, 0.985)}),
    ("s2", "Enhancement", "LOL", {"LOL": (23.43, 0.863)}),
    ("s2", "Enhancement", "FiveK", {"FiveK": (26.15, 0.945)}),
]

# Tiny configurations for tests: the golden cases' (released structure, small features and block/grid sizes).
TINY = dict(features=8, block_size_hr=(4, 4), grid_size_hr=(4, 4), block_size_lr=(2, 2), grid_size_lr=(2, 2))


def _register_all() -> None:
    for v, kw in _VARIANTS.items():
        register(f"maxim_{v}", "maxim", MAXIM, converter=_CONVERTER,
                 info={"variant": f"{v[0].upper()}-{v[1]}", "num_params": _PARAMS[v], "size_multiple": 64},
                 **_RELEASED, **kw)
    for v, task, dataset, metrics in _CHECKPOINTS:
        name = f"maxim_{v}_{task.lower()}_{dataset.lower().replace('-', '_')}"
        info = {"variant": f"{v[0].upper()}-{v[1]}", "task": task.lower(), "dataset": dataset,
                "checkpoint": f"gs://gresearch/maxim/ckpt/{task}/{dataset}/checkpoint.npz",
                # Every release is called checkpoint.npz, so the cache keeps each under the model's name.
                "weights": dict(url=f"https://storage.googleapis.com/gresearch/maxim/ckpt/{task}/{dataset}/"
                                    f"checkpoint.npz", file=f"{name}.npz", license="Apache-2.0",
                                source="google-research/maxim (official release, Google Cloud bucket gs://gresearch)"),
                "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),  # takes images in [0, 1]
                "published": {k: {"psnr": p, "ssim": s} for k, (p, s) in metrics.items()},
                "num_params": _PARAMS[v], "size_multiple": 64}
        register(name, "maxim", MAXIM, converter=_CONVERTER, info=info, **_RELEASED, **_VARIANTS[v])
    register("maxim_tiny_s3", "maxim", MAXIM, converter=_CONVERTER, info={"size_multiple": 16},
             **{**_RELEASED, **_VARIANTS["s3"], **TINY})
    register("maxim_tiny_s2", "maxim", MAXIM, converter=_CONVERTER, info={"size_multiple": 16},
             **{**_RELEASED, **_VARIANTS["s2"], **TINY, "grid_size_hr": (8, 8), "grid_size_lr": (4, 4)})
    # Smallest useful model (1 group, 1 bottleneck block, 2 stages) for fast inference/training tests.
    register("maxim_tiny", "maxim", MAXIM, converter=_CONVERTER, info={"size_multiple": 16},
             **{**_RELEASED, **TINY, "num_stages": 2, "num_groups": 1, "num_bottleneck_blocks": 1})


_register_all()
