"""Model names -> presets, and the timm-style front door: create_model, list_models, load_pretrained.

A preset is a builder (usually the model class) plus keyword arguments, optionally a converter that
loads the reference checkpoint format of that family, and `info`: preprocessing (input size, mean/std,
crop_pct, interpolation) and, for models with released weights, where they come from (`info["weights"]`:
source `url`, cache `file` name, `license`).

Released weights are never downloaded: `create_model(name, pretrained=True)` reads them from the local
cache folder (`~/.cache/flaxzoo`, or `$FLAXZOO_CACHE`) and, when the file is not there, says where to
download it from and the exact path to put it at.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
import os
from typing import Any, Callable, Sequence

from flax import nnx

from flaxzoo.layers import host_keys


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    builder: Callable[..., nnx.Module]
    kwargs: dict[str, Any]
    converter: str | None = None  # "module:function" taking (model, state_dict, **kw)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # input size, mean/std, task, weights...

    @property
    def has_weights(self) -> bool:
        return "weights" in self.info

    @property
    def pretrained_cfg(self) -> "PretrainedCfg":
        """timm's pretrained_cfg fields: what the weights expect as input and where they come from."""
        info, weights = self.info, self.info.get("weights", {})
        return PretrainedCfg(
            input_size=info.get("input_size"), mean=info.get("mean"), std=info.get("std"),
            crop_pct=info.get("crop_pct"), crop_mode=info.get("crop_mode"),
            interpolation=info.get("interpolation"), num_classes=self.kwargs.get("num_classes"),
            url=weights.get("url"), file=weights.get("file"), license=weights.get("license"),
            source=weights.get("source"), notes=weights.get("notes"))


class PretrainedCfg(dict):
    """A plain dict of hashable values, hashable itself, so it can live on an NNX module (static metadata)."""

    def __hash__(self):
        return hash(tuple(sorted(self.items())))


_REGISTRY: dict[str, ModelSpec] = {}
_FAMILIES = ("flaxzoo.models.swin", "flaxzoo.models.maxim", "flaxzoo.models.uoe", "flaxzoo.models.proxy_field",
             "flaxzoo.models.field_baselines")
_loaded = False

# timm names of architectures flaxzoo does not implement (they are not the Swin of the registered presets).
_NOT_IMPLEMENTED = {
    "swin_s3_": "timm's Swin-S3 (AutoFormerV2 search-space) models",
    "swinv2_cr_": "timm's SwinV2-CR (Christoph Reich's Swin V2 variant) models",
}

CACHE_ENV = "FLAXZOO_CACHE"


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
        for prefix, what in _NOT_IMPLEMENTED.items():
            if name.startswith(prefix):
                raise ValueError(f"{name!r} is one of {what}, a different architecture that flaxzoo does not "
                                 f"implement. The timm Swin names flaxzoo covers: flaxzoo.list_models('swin*').")
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} See flaxzoo.list_models() for all names.")
    return _REGISTRY[name]


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered model names matching a shell-style pattern, sorted; `pretrained=True`: only those with
    released weights (which `create_model(name, pretrained=True)` loads from the cache folder)."""
    _load_families()
    return sorted(n for n, s in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (s.has_weights or not pretrained))


def cache_dir() -> str:
    """Where `pretrained=True` looks for released weights: $FLAXZOO_CACHE, else ~/.cache/flaxzoo."""
    return os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "flaxzoo"))


def cached_weights(name: str) -> str:
    """Path of the released weights of `name` in the cache folder; a clear error when they are not there."""
    spec = get_spec(name)
    if not spec.has_weights:
        with_weights = ", ".join(list_models(f"{spec.family}*", pretrained=True)) or "none"
        raise ValueError(f"{name!r} has no released weights, so pretrained=True cannot load any. Use "
                         f"pretrained=False (random init), checkpoint_path=<your file>, or a model that has them "
                         f"({spec.family}: {with_weights}).")
    weights = spec.info["weights"]
    path = os.path.join(cache_dir(), weights["file"])
    if not os.path.isfile(path):
        native = os.path.join(cache_dir(), f"{name}.safetensors")
        if os.path.isfile(native):  # the same weights converted once by scripts/convert.py
            return native
        raise FileNotFoundError(
            f"The released weights of {name!r} are not in the cache folder, and flaxzoo never downloads. "
            f"Download {weights['url']} and save it as {path} (or set ${CACHE_ENV} to the folder that holds "
            f"{weights['file']}).")
    return path


def _parameters(builder: Callable) -> dict[str, inspect.Parameter]:
    """A builder's keyword parameters (for a class, its __init__'s: NNX's metaclass hides them)."""
    params = dict(inspect.signature(builder.__init__ if isinstance(builder, type) else builder).parameters)
    params.pop("self", None)
    return params


def _accepts(builder: Callable, key: str) -> bool:
    params = _parameters(builder)
    return key in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _build(spec: ModelSpec, rngs: nnx.Rngs | None, overrides: dict) -> nnx.Module:
    kwargs = {**spec.kwargs, **overrides}
    accepted = _parameters(spec.builder)
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted) - {"rngs"})
        if unknown:
            close = {k: difflib.get_close_matches(k, list(accepted), n=1) for k in unknown}
            hints = "; ".join(f"{k!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for k, c in close.items())
            raise TypeError(f"{spec.name} ({spec.builder.__name__}) has no setting {hints}. Its settings: "
                            f"{', '.join(k for k in accepted if k != 'rngs')}.")
    rngs = rngs if rngs is not None else host_keys.seed_rngs(0)
    with host_keys.host_keys(rngs):  # the same keys as NNX's, without a dispatch per parameter
        model = spec.builder(**kwargs, rngs=rngs)
    _set_pretrained_cfg(model, spec)
    return model


def _set_pretrained_cfg(model: nnx.Module, spec: ModelSpec) -> None:
    model.pretrained_cfg = PretrainedCfg(spec.pretrained_cfg, num_classes=getattr(model, "num_classes", None))


def create_model(name: str, pretrained: bool = False, checkpoint_path: str | os.PathLike | None = None,
                 features_only: bool = False, out_indices: Sequence[int] | None = None,
                 num_classes: int | None = None, *, rngs: nnx.Rngs | None = None, **overrides) -> nnx.Module:
    """Build a registered model, as timm's `create_model` does.

    pretrained: load the released weights from the cache folder (see `cache_dir`); never downloads.
    checkpoint_path: load this file (a reference checkpoint, flaxzoo weights, or a run's workdir); it
      takes precedence over `pretrained`.
    features_only: return a `FeatureExtractor` whose call gives the stage maps (NHWC) picked by
      `out_indices` (default: all), with `feature_info` (num_chs, reduction, module per map).
    num_classes: classifier size. With `pretrained=True` the released head is replaced by a fresh one
      (`reset_classifier`) when it differs; a `checkpoint_path` file must have that many classes.
    overrides: any other constructor setting (e.g. drop_path_rate=0.2).
    """
    spec = get_spec(name)
    if num_classes is not None and not _accepts(spec.builder, "num_classes"):
        raise TypeError(f"{name} is not a classifier (it has no num_classes); drop num_classes=.")
    classes = {} if num_classes is None else {"num_classes": num_classes}
    if checkpoint_path is not None:  # as timm: the file must fit the model asked for, head included
        model = load_pretrained(name, checkpoint_path, rngs=rngs, **overrides, **classes)
    elif pretrained:  # as timm: the released head is replaced when another num_classes is asked for
        model = load_pretrained(name, cached_weights(name), rngs=rngs, **overrides)
        if num_classes is not None and model.num_classes != num_classes:
            model.reset_classifier(num_classes, rngs=rngs)
    else:
        model = _build(spec, rngs, {**overrides, **classes})
    _set_pretrained_cfg(model, spec)  # num_classes as built (after a head reset)
    if features_only:
        from flaxzoo.models.features import FeatureExtractor

        return FeatureExtractor(model, out_indices, name=name)
    return model


def load_pretrained(name_or_path: str | os.PathLike, path: str | os.PathLike | None = None, *,
                    rngs: nnx.Rngs | None = None, **overrides) -> nnx.Module:
    """Create a model and load weights into it.

    `load_pretrained(path)`: path is flaxzoo-native safetensors (written by a training run, `save_params`
    or scripts/convert.py) or a run's workdir holding `model.safetensors`; the file records the model name
    and its settings, so it alone rebuilds the exact model.
    `load_pretrained(name, path, **overrides)`: path may also be a checkpoint in the reference's own layout
    (timm/Microsoft Swin, official MAXIM checkpoint.npz, UoE authors' state dict), converted on the fly.
    Overrides replace the recorded settings. Never unpickles.
    """
    from flaxzoo.models.convert.common import (assign_params, native_metadata, read_state_dict,
                                               resolve_weights_path)

    if path is None:
        path = resolve_weights_path(name_or_path)
        meta = native_metadata(path)
        if meta is None:
            raise ValueError(f"{path} is not a flaxzoo weights file, so it does not say which model it holds; "
                             f"pass the name: flaxzoo.load_pretrained(name, {os.fspath(name_or_path)!r}).")
        if not meta["model"]:
            raise ValueError(f"{path} records no model name (it was saved without model_name=); pass it: "
                             f"flaxzoo.load_pretrained(name, {os.fspath(name_or_path)!r}, **settings).")
        name = meta["model"]
    else:
        name, path = os.fspath(name_or_path), resolve_weights_path(path)
        meta = native_metadata(path)
    spec = get_spec(name)
    if meta is not None:
        kwargs = {**meta["kwargs"], **overrides}
        if meta["model"] and meta["model"] != name and not _same_architecture(meta["model"], name):
            raise ValueError(f"{path} holds weights of {meta['model']!r}, not {name!r}. Load it with "
                             f"flaxzoo.load_pretrained({os.fspath(path)!r}) (the file names its model), or pick "
                             f"the weights of {name!r}.")
        model = _build(spec, rngs, kwargs)
        assign_params(model, read_state_dict(path), source=f"flaxzoo weights of {meta['model'] or 'unnamed model'!r}")
    elif spec.converter is None:
        raise ValueError(f"Model {name!r} has no converter for reference checkpoints; pass flaxzoo-native weights "
                         f"(.safetensors written by flaxzoo).")
    else:
        model = _build(spec, rngs, overrides)
        load_weights(model, read_state_dict(path), converter=spec.converter)
    return model


def _same_architecture(a: str, b: str) -> bool:
    """Two names for one network (e.g. maxim_s3 and maxim_s3_denoising_sidd): same builder, same preset."""
    try:
        sa, sb = get_spec(a), get_spec(b)
    except ValueError:  # a name this flaxzoo version does not register
        return False
    return sa.builder is sb.builder and sa.kwargs == sb.kwargs


def load_weights(model: nnx.Module, state_dict: dict, *, converter: str, **kw) -> nnx.Module:
    module, fn = converter.split(":")
    return getattr(importlib.import_module(module), fn)(model, state_dict, **kw)
