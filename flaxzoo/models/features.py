"""timm's `features_only`: a model whose call returns its stage maps, with `feature_info` describing them.

    backbone = flaxzoo.create_model("swin_tiny_patch4_window7_224", features_only=True, out_indices=(1, 3))
    maps = backbone(images)                  # [NHWC stride 8, NHWC stride 32]
    backbone.feature_info.channels()         # [192, 768]
    backbone.feature_info.reduction()        # [8, 32]

A family supports it by giving its model `features(x) -> [stage maps]` and `feature_stages`, a tuple of
(channels, reduction, module name) per map.
"""
from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

# Who has stage maps (for the error message of those that do not).
SUPPORTED = "Swin V1/V2 (swin_*, swinv2_*) and Swin with UoME MLPs (swin_uoe_*)"


class FeatureInfo:
    """Per selected map: {'num_chs', 'reduction', 'module', 'index'} (timm's keys). Hashable, so it can sit
    on an NNX module as static metadata."""

    def __init__(self, stages: Sequence[tuple[int, int, str]], out_indices: Sequence[int]):
        self._entries = tuple((int(stages[i][0]), int(stages[i][1]), str(stages[i][2]), int(i)) for i in out_indices)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int) -> dict:
        c, r, m, idx = self._entries[i]
        return {"num_chs": c, "reduction": r, "module": m, "index": idx}

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def channels(self) -> list[int]:
        return [e[0] for e in self._entries]

    def reduction(self) -> list[int]:
        return [e[1] for e in self._entries]

    def module_name(self) -> list[str]:
        return [e[2] for e in self._entries]

    def __eq__(self, other) -> bool:
        return isinstance(other, FeatureInfo) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __repr__(self) -> str:
        return f"FeatureInfo({list(self)})"


def _select(out_indices: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if out_indices is None:
        return tuple(range(n))
    picked = []
    for i in out_indices:
        if not isinstance(i, int) or not -n <= i < n:
            raise ValueError(f"out_indices {tuple(out_indices)}: each must be a stage index in [{-n}, {n - 1}] "
                             f"(this model has {n} stages).")
        picked.append(i % n)
    if len(set(picked)) != len(picked):
        raise ValueError(f"out_indices {tuple(out_indices)} names a stage twice.")
    return tuple(picked)


class FeatureExtractor(nnx.Module):
    """Wraps a model with stage maps; `__call__(x)` gives the maps picked by `out_indices`, NHWC.

    The wrapped model stays reachable as `.model` (its parameters keep their paths under `model.`).
    """

    def __init__(self, model: nnx.Module, out_indices: Sequence[int] | None = None, *, name: str = ""):
        stages = getattr(model, "feature_stages", None)
        if stages is None:
            what = name or type(model).__name__
            raise ValueError(f"features_only=True is not available for {what} ({type(model).__name__}): it has "
                             f"no multi-scale stage maps. It is supported for {SUPPORTED}. For this model use "
                             f"its outputs (or model.forward_features(x) where it has one).")
        self.model = model
        self.out_indices = _select(out_indices, len(stages))
        self.feature_info = FeatureInfo(stages, self.out_indices)
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None)

    def __call__(self, x: jax.Array) -> list[jax.Array]:
        maps = self.model.features(x)
        return [maps[i] for i in self.out_indices]
