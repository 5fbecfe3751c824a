"""Model names -> presets. Each family module registers its presets at import.

A preset is a builder (usually the model class) plus keyword arguments, and optionally
a converter that loads the reference checkpoint format of that family.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
from typing import Any, Callable

from flax import nnx


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    builder: Callable[..., nnx.Module]
    kwargs: dict[str, Any]
    converter: str | None = None  # "module:function" taking (model, state_dict, **kw)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # input size, mean/std, task, dataset...


_REGISTRY: dict[str, ModelSpec] = {}
_FAMILIES = ("flaxzoo.models.swin", "flaxzoo.models.maxim", "flaxzoo.models.uoe")
_loaded = False


def register(name: str, family: str, builder: Callable[..., nnx.Module], *, converter: str | None = None,
             info: dict[str, Any] | None = None, **kwargs) -> None:
    if name in _REGISTRY:
        raise ValueError(f"Model name {name!r} is registered twice.")
    _REGISTRY[name] = ModelSpec(name, family, builder, dict(kwargs), converter, dict(info or {}))


def _load_families() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _FAMILIES:
            importlib.import_module(module)


def get_spec(name: str) -> ModelSpec:
    _load_families()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} See flaxzoo.list_models() for all names.")
    return _REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    _load_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(name: str, *, rngs: nnx.Rngs | None = None, **overrides) -> nnx.Module:
    """Build a registered model; keyword overrides replace preset fields (e.g. num_classes=10)."""
    spec = get_spec(name)
    return spec.builder(**{**spec.kwargs, **overrides}, rngs=rngs if rngs is not None else nnx.Rngs(0))


def load_pretrained(name: str, path: str, *, rngs: nnx.Rngs | None = None, **overrides) -> nnx.Module:
    """Create `name` and load weights into it.

    `path` is either flaxzoo-native safetensors (written by `save_params` / scripts/convert.py)
    or a checkpoint in the reference's own layout (timm/Microsoft Swin, official MAXIM
    checkpoint.npz, UoE authors' state dict), converted on the fly. Never unpickles.
    """
    from flaxzoo.models.convert.common import assign_params, native_model_name, read_state_dict

    spec = get_spec(name)
    model = create_model(name, rngs=rngs, **overrides)
    native = native_model_name(path)
    if native is not None:
        assign_params(model, read_state_dict(path), source=f"flaxzoo weights of {native or 'unnamed model'!r}")
    elif spec.converter is None:
        raise ValueError(f"Model {name!r} has no converter for reference checkpoints; pass flaxzoo-native weights.")
    else:
        load_weights(model, read_state_dict(path), converter=spec.converter)
    return model


def load_weights(model: nnx.Module, state_dict: dict, *, converter: str, **kw) -> nnx.Module:
    module, fn = converter.split(":")
    return getattr(importlib.import_module(module), fn)(model, state_dict, **kw)
