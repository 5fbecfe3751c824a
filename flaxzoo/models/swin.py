"""Swin Transformer V1 and V2 (Liu et al. 2021, 2022), laid out like timm 1.0.

Parameter tree (flaxzoo paths; the converter maps timm/Microsoft names onto these):
  patch_embed.{proj, norm}
  layers.<s>.downsample.{norm, reduction}     s >= 1: PatchMerging starts a stage (timm layout)
  layers.<s>.blocks.<b>.{norm1, attn, norm2, mlp}
  norm, head.fc

Any NHWC input size works: the image is zero-padded (bottom/right) to a patch multiple,
every attention layer pads its map to a window multiple after the cyclic shift and crops
afterwards (timm's `strict_img_size=False` behaviour), and PatchMerging pads odd sizes.
Window and shift per block follow timm's rule, from the resolution the model was built
for (`img_size`): a window larger than the map shrinks to it, and then does not shift.

Models are created in eval mode (dropout and drop path off); `model.train()` turns them on.

Speed switches (same numbers, different programs): `attn_impl="fused"` runs window attention
through `jax.nn.dot_product_attention` (cuDNN's fused kernel on a GPU in bf16, see
`flaxzoo.layers.attention`); `remat` recomputes each block's activations in the backward pass
instead of keeping them: "block" keeps only the block inputs, "dots" keeps the matmul outputs
(recomputes LayerNorm, GELU, softmax), "dots_no_batch" keeps only the linear layers' outputs
(recomputes the attention matrices too).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import (DropPath, LayerNorm, Linear, Mlp, drop_path_rates, gelu_exact, param_init,
                            pad_to_multiple, shifted_window_mask, window_partition, window_unpartition)
from flaxzoo.layers import host_init
from flaxzoo.layers.conv import patch_conv
from flaxzoo.layers.attention import AttnImpl, check_attn_impl
from flaxzoo.layers.window_attention import WindowAttention
from flaxzoo.models.registry import register
from flaxzoo.validate import check_image_batch, check_rates, check_sizes

LN_EPS = 1e-5  # torch's LayerNorm default; flax's 1e-6 breaks parity

# mlp_factory(dim, hidden_dim, *, rngs) -> module mapping (..., dim) -> (..., dim)
MlpFactory = Callable[..., nnx.Module]

# What a rematerialised block keeps for the backward pass (None: nothing but its input).
REMAT_POLICIES = {"block": None, "dots": jax.checkpoint_policies.dots_saveable,
                  "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}
REMATS = ("none",) + tuple(REMAT_POLICIES)


def check_remat(remat: str) -> None:
    if remat not in REMATS:
        raise ValueError(f"SwinTransformer remat must be one of {REMATS}, got {remat!r}.")


def _pair(x) -> tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, int) else tuple(int(v) for v in x)


def window_and_shift(resolution: Sequence[int], window: Sequence[int], shift: Sequence[int]):
    """timm's `_calc_window_shift`: per axis, a window larger than the map becomes the map,
    and an axis whose map fits in one window does not shift."""
    win = tuple(r if r <= w else w for r, w in zip(resolution, window))
    sh = tuple(0 if r <= w else s for r, w, s in zip(resolution, win, shift))
    return win, sh


class PatchEmbed(nnx.Module):
    """Non-overlapping patch projection (conv with stride = patch) + LayerNorm, NHWC."""

    def __init__(self, patch_size: Sequence[int], in_chans: int, embed_dim: int, *, dtype=None, rngs: nnx.Rngs):
        self.patch_size, self.in_chans = tuple(patch_size), in_chans
        self.proj = nnx.Conv(in_chans, embed_dim, kernel_size=self.patch_size, strides=self.patch_size,
                             padding="VALID", dtype=dtype,
                             kernel_init=param_init(host_init.lecun_normal(), (None, None, "conv_in", "embed")),
                             bias_init=param_init(host_init.constant(0.0), ("embed",)), rngs=rngs)
        self.norm = LayerNorm(embed_dim, eps=LN_EPS, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        # Every entry point (__call__, features, forward_features) starts here: one input check per call.
        check_image_batch(x, name="Swin input", channels=self.in_chans)  # any H, W >= 1 works (padded)
        x, _ = pad_to_multiple(x, self.patch_size)  # any image size: pad bottom/right with zeros
        return self.norm(patch_conv(self.proj, x))  # self.proj(x) as a GEMM over patches (faster gradient)


class PatchMerging(nnx.Module):
    """2x2 neighbourhood -> 4C channels in (h, w) order (0,0), (1,0), (0,1), (1,1), then a 4C -> out
    reduction. V1 normalises before the reduction (norm over 4C), V2 after (norm over out)."""

    def __init__(self, dim: int, out_dim: int, *, post_norm: bool = False, dtype=None, rngs: nnx.Rngs):
        self.post_norm = post_norm
        self.reduction = Linear(4 * dim, out_dim, use_bias=False, axes=("mlp", "embed"), dtype=dtype, rngs=rngs)
        self.norm = LayerNorm(out_dim if post_norm else 4 * dim, eps=LN_EPS, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x, _ = pad_to_multiple(x, (2, 2))
        b, h, w, c = x.shape
        # (B, H/2, dh, W/2, dw, C) -> (B, H/2, W/2, dw, dh, C): channel = dw*2C + dh*C + c
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 4, 2, 5).reshape(b, h // 2, w // 2, 4 * c)
        if self.post_norm:
            return self.norm(self.reduction(x))
        return self.reduction(self.norm(x))


class SwinBlock(nnx.Module):
    """(Shifted) window attention + MLP, each a residual branch with drop path.

    V1 is pre-norm: x + attn(norm1(x)). V2 is res-post-norm: x + norm1(attn(x)).
    """

    def __init__(self, dim: int, num_heads: int, resolution: Sequence[int], window: Sequence[int],
                 shift: Sequence[int], *, v2: bool = False, head_dim: int | None = None, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, pretrained_window: Sequence[int] = (0, 0), proj_drop: float = 0.0,
                 drop_path: float = 0.0, mlp_factory: MlpFactory | None = None, attn_impl: AttnImpl = "xla",
                 dtype=None, rngs: nnx.Rngs):
        self.v2 = v2
        self.window, self.shift = window_and_shift(resolution, window, shift)
        self.norm1 = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.attn = WindowAttention(dim, num_heads, self.window, cosine=v2, qkv_bias=qkv_bias, head_dim=head_dim,
                                    pretrained_window=_pair(pretrained_window), proj_drop=proj_drop,
                                    attn_impl=attn_impl, dtype=dtype, rngs=rngs)
        self.drop_path1 = DropPath(drop_path, rngs=rngs)
        self.norm2 = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        hidden = int(dim * mlp_ratio)
        if mlp_factory is None:
            self.mlp = Mlp(dim, hidden, act=gelu_exact, dropout=proj_drop, dtype=dtype, rngs=rngs)
        else:
            self.mlp = mlp_factory(dim, hidden, rngs=rngs)
        self.drop_path2 = DropPath(drop_path, rngs=rngs)
        if v2:  # timm `_init_respostnorm`: post-norms start at zero so each block starts as the identity
            for norm in (self.norm1, self.norm2):
                norm.scale.set_value(jnp.zeros_like(norm.scale.get_value()))

    def _shifted_window_attention(self, x: jax.Array) -> jax.Array:
        _, h, w, c = x.shape
        shifted = any(self.shift)
        if shifted:
            x = jnp.roll(x, (-self.shift[0], -self.shift[1]), axis=(1, 2))
        # timm pads after the roll; pad tokens are masked only where the shift mask separates them.
        x, _ = pad_to_multiple(x, self.window)
        hp, wp = x.shape[1], x.shape[2]
        mask = shifted_window_mask(hp, wp, self.window, self.shift)  # static numpy, None if no shift
        windows = self.attn(window_partition(x, self.window), mask)
        x = window_unpartition(windows, self.window, hp, wp)[:, :h, :w, :]
        if shifted:
            x = jnp.roll(x, self.shift, axis=(1, 2))
        return x

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.v2:
            x = x + self.drop_path1(self.norm1(self._shifted_window_attention(x)))
            return x + self.drop_path2(self.norm2(self.mlp(x)))
        x = x + self.drop_path1(self._shifted_window_attention(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class SwinStage(nnx.Module):
    """Optional PatchMerging (every stage but the first), then blocks alternating shift 0 / window//2."""

    def __init__(self, dim: int, out_dim: int, resolution: Sequence[int], depth: int, num_heads: int,
                 window: Sequence[int], *, downsample: bool, v2: bool, drop_paths: Sequence[float],
                 pretrained_window: Sequence[int] = (0, 0), mlp_factory: MlpFactory | None = None, dtype=None,
                 remat: str = "none", rngs: nnx.Rngs, **block_kw):
        check_remat(remat)
        self.remat = remat
        self.downsample = PatchMerging(dim, out_dim, post_norm=v2, dtype=dtype, rngs=rngs) if downsample else None
        shift = tuple(w // 2 for w in window)
        self.blocks = nnx.List([
            SwinBlock(out_dim, num_heads, resolution, window, (0, 0) if i % 2 == 0 else shift, v2=v2,
                      pretrained_window=pretrained_window, drop_path=drop_paths[i], mlp_factory=mlp_factory,
                      dtype=dtype, rngs=rngs, **block_kw)
            for i in range(depth)])

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.downsample is not None:
            x = self.downsample(x)
        for block in self.blocks:
            if self.remat == "none":
                x = block(x)
            else:
                x = nnx.remat(lambda block, x: block(x), policy=REMAT_POLICIES[self.remat])(block, x)
        return x


class ClassifierHead(nnx.Module):
    """Global average pool over H, W, dropout, `fc` (absent when num_classes == 0)."""

    def __init__(self, dim: int, num_classes: int, *, drop_rate: float = 0.0, dtype=None, rngs: nnx.Rngs):
        self.dim, self.dtype = dim, dtype
        self.drop = nnx.Dropout(drop_rate, rngs=rngs)
        self.reset(num_classes, rngs=rngs)

    def reset(self, num_classes: int, *, rngs: nnx.Rngs) -> None:
        """A freshly initialised `fc` for `num_classes` (none for 0)."""
        self.num_classes = num_classes
        self.fc = Linear(self.dim, num_classes, axes=("embed", "vocab"), dtype=self.dtype,
                         rngs=rngs) if num_classes else None

    def __call__(self, x: jax.Array, pre_logits: bool = False) -> jax.Array:
        x = self.drop(x.mean(axis=(1, 2)))
        return self.fc(x) if self.fc is not None and not pre_logits else x


class SwinTransformer(nnx.Module):
    """Swin Transformer; `v2=True` gives Swin V2 (cosine attention, CPB, res-post-norm).

    Constructor arguments follow timm's names, so timm kwargs build the same network.
    `img_size` only fixes the per-block window/shift rule (and the preset's preprocessing);
    inputs of any size are accepted.
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int | Sequence[int] = 4, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int | Sequence[int] = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 head_dim: int | None = None, window_size: int | Sequence[int] = 7, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_rate: float = 0.0, proj_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, v2: bool = False,
                 pretrained_window_sizes: Sequence[int | Sequence[int]] | None = None,
                 mlp_factory: MlpFactory | None = None, dtype=None, *, attn_impl: AttnImpl = "xla",
                 remat: str = "none", rngs: nnx.Rngs):
        check_attn_impl("SwinTransformer", attn_impl)
        check_remat(remat)
        check_sizes("SwinTransformer", 1, img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                    embed_dim=embed_dim, depths=depths, num_heads=num_heads, window_size=window_size)
        check_sizes("SwinTransformer", 0, num_classes=num_classes)
        check_rates("SwinTransformer", drop_rate=drop_rate, proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate)
        num_stages = len(depths)
        if len(num_heads) != num_stages:
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} need one entry per stage.")
        dims = [int(embed_dim) * 2 ** i for i in range(num_stages)] if isinstance(embed_dim, int) else list(embed_dim)
        pretrained = pretrained_window_sizes if pretrained_window_sizes is not None else (0,) * num_stages
        self.v2 = v2
        self.num_features = dims[-1]
        self.feature_dims = tuple(dims)
        stride = _pair(patch_size)[0]
        # (channels, reduction, module) of each stage map, as timm's feature_info
        self.feature_stages = tuple((d, stride * 2 ** i, f"layers.{i}") for i, d in enumerate(dims))
        self.patch_embed = PatchEmbed(_pair(patch_size), in_chans, dims[0], dtype=dtype, rngs=rngs)

        grid = [s // p for s, p in zip(_pair(img_size), _pair(patch_size))]
        window = _pair(window_size)
        rates = drop_path_rates(drop_path_rate, sum(depths))
        stages, start = [], 0
        for i, depth in enumerate(depths):
            if i > 0:
                grid = [g // 2 for g in grid]  # construction-time resolution, as timm computes it
            stages.append(SwinStage(dims[max(i - 1, 0)], dims[i], tuple(grid), depth, num_heads[i], window,
                                    downsample=i > 0, v2=v2, drop_paths=rates[start:start + depth],
                                    pretrained_window=_pair(pretrained[i]), mlp_factory=mlp_factory,
                                    head_dim=head_dim, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                                    proj_drop=proj_drop_rate, attn_impl=attn_impl, remat=remat, dtype=dtype,
                                    rngs=rngs))
            start += depth
        self.layers = nnx.List(stages)
        self.norm = LayerNorm(dims[-1], eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.head = ClassifierHead(dims[-1], num_classes, drop_rate=drop_rate, dtype=dtype, rngs=rngs)
        self.eval()  # inference by default; model.train() enables dropout / drop path

    def features(self, x: jax.Array) -> list[jax.Array]:
        """NHWC maps after each stage (strides 4, 8, 16, 32 for 4 stages), without the final norm."""
        x = self.patch_embed(x)
        outs = []
        for stage in self.layers:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: jax.Array) -> jax.Array:
        """Last stage output after the final LayerNorm, NHWC."""
        return self.norm(self.features(x)[-1])

    def forward_head(self, x: jax.Array, pre_logits: bool = False) -> jax.Array:
        """forward_features' map -> logits; `pre_logits=True`: the pooled features the classifier sees."""
        return self.head(x, pre_logits=pre_logits)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def reset_classifier(self, num_classes: int, *, rngs: nnx.Rngs | None = None) -> None:
        """Replace the classifier with a fresh one for `num_classes` (0: none, the model returns pooled features)."""
        self.head.reset(num_classes, rngs=rngs if rngs is not None else nnx.Rngs(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        """NHWC images (any size) -> logits (B, num_classes), or pooled features if num_classes == 0."""
        return self.forward_head(self.forward_features(x))


def SwinTransformerV2(**kwargs) -> SwinTransformer:
    """Swin V2 under timm's class name (so timm kwargs + class name build it)."""
    return SwinTransformer(v2=True, **kwargs)


# ----------------------------------------------------------------------------------------------
# Presets: timm names and constructor kwargs; `info` holds timm's default preprocessing.

_CONVERTER = "flaxzoo.models.convert.swin:convert"
_IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bicubic", crop_mode="center")

_T = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
_S = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
_B = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
_L = dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48))


# The released weights: Microsoft's files, the ones timm's default configs load (MIT licence).
_RELEASES = "https://github.com/SwinTransformer/storage/releases/download"


def _weights(release_file: str) -> dict:
    version = "v2.0.0" if release_file.startswith("swinv2") else "v1.0.0"
    return dict(url=f"{_RELEASES}/{version}/{release_file}", file=release_file, license="MIT",
                source="microsoft/Swin-Transformer (the checkpoints timm's default configs use)",
                notes="a torch file: reading it needs torch; or convert it once with scripts/convert.py")


def _register(name: str, *, img: int, crop_pct: float, v2: bool, num_classes: int = 1000, weights: str = "",
              **kwargs):
    info = dict(_IMAGENET, input_size=(img, img, 3), crop_pct=crop_pct, num_classes=num_classes, task="classify",
                reference=f"timm {name}")
    if weights:
        info["weights"] = _weights(weights)
    register(name, "swin", SwinTransformer, converter=_CONVERTER, info=info, img_size=img, v2=v2,
             num_classes=num_classes, **kwargs)


for _size, _arch in (("tiny", _T), ("small", _S), ("base", _B), ("large", _L)):
    # tiny/small were trained on ImageNet-1k; base/large's default weights are ImageNet-22k fine-tuned on 1k
    _file = f"swin_{_size}_patch4_window7_224" + ("_22kto1k.pth" if _size in ("base", "large") else ".pth")
    _register(f"swin_{_size}_patch4_window7_224", img=224, crop_pct=0.9, v2=False, patch_size=4, window_size=7,
              weights=_file, **_arch)
for _size, _arch in (("base", _B), ("large", _L)):
    _register(f"swin_{_size}_patch4_window12_384", img=384, crop_pct=1.0, v2=False, patch_size=4, window_size=12,
              weights=f"swin_{_size}_patch4_window12_384_22kto1k.pth", **_arch)

for _size, _arch in (("tiny", _T), ("small", _S), ("base", _B)):
    for _win in (8, 16):
        _register(f"swinv2_{_size}_window{_win}_256", img=256, crop_pct=0.9, v2=True, window_size=_win,
                  weights=f"swinv2_{_size}_patch4_window{_win}_256.pth", **_arch)
for _size, _arch in (("base", _B), ("large", _L)):
    # ImageNet-22k pre-trained at 192 (21841 classes), and its 1k fine-tunes at 256 / 384 whose CPB
    # coordinates are normalised by the pre-training windows.
    _register(f"swinv2_{_size}_window12_192", img=192, crop_pct=0.9, v2=True, num_classes=21841, window_size=12,
              weights=f"swinv2_{_size}_patch4_window12_192_22k.pth", **_arch)
    _register(f"swinv2_{_size}_window12to16_192to256", img=256, crop_pct=0.9, v2=True, window_size=16,
              pretrained_window_sizes=(12, 12, 12, 6),
              weights=f"swinv2_{_size}_patch4_window12to16_192to256_22kto1k_ft.pth", **_arch)
    _register(f"swinv2_{_size}_window12to24_192to384", img=384, crop_pct=1.0, v2=True, window_size=24,
              pretrained_window_sizes=(12, 12, 12, 6),
              weights=f"swinv2_{_size}_patch4_window12to24_192to384_22kto1k_ft.pth", **_arch)

# Tiny presets for tests and smoke runs: the real 4-stage topology at a fraction of the width.
_register("swin_test_tiny", img=64, crop_pct=0.9, v2=False, num_classes=10, patch_size=4, window_size=4,
          embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), drop_path_rate=0.1)
_register("swinv2_test_tiny", img=64, crop_pct=0.9, v2=True, num_classes=10, patch_size=4, window_size=4,
          embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), drop_path_rate=0.1)
