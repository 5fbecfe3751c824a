"""Reading reference checkpoints and writing them into flaxzoo models.

Every family converter maps the reference's flat `{name: array}` dict to flaxzoo
parameter paths, then calls `assign_params`, which refuses to guess: missing,
unexpected and mis-shaped keys are all reported in one error. No pickle is ever
loaded: safetensors and npz are read with pickles disabled, torch files only with
`weights_only=True`.
"""
from __future__ import annotations

import inspect
import json
import os
from typing import Any, Iterable, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.files import atomic_path

# The file readers live in weights_files.py (one concept a file); re-exported here, where callers look.
from flaxzoo.models.convert.weights_files import (StateDict, WeightsFileError, check_weights_file,  # noqa: F401
                                                  read_safetensors_metadata, read_state_dict)


def path_str(path: Iterable) -> str:
    """('layers', 0, 'attn', 'qkv', 'kernel') -> 'layers.0.attn.qkv.kernel'."""
    return ".".join(str(p) for p in path)


def model_param_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Every parameter path of a model (works on `nnx.eval_shape` models too) -> shape."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {path_str(p): tuple(v.get_value().shape) for p, v in flat}


def _summarise(title: str, items: list[str], limit: int = 20) -> str:
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}):\n  {shown}{more}"


def check_mapping(expected: Mapping[str, tuple], provided: Mapping[str, tuple], *, source: str = "checkpoint") -> None:
    """Raise one ValueError listing missing, unexpected and mis-shaped keys (flaxzoo names)."""
    missing = sorted(set(expected) - set(provided))
    unexpected = sorted(set(provided) - set(expected))
    wrong = sorted(f"{k}: model {tuple(expected[k])} vs {source} {tuple(provided[k])}"
                   for k in set(expected) & set(provided) if tuple(expected[k]) != tuple(provided[k]))
    if missing or unexpected or wrong:
        parts = [f"The {source} does not match the model."]
        if missing:
            parts.append(_summarise("Missing from the checkpoint", missing))
        if unexpected:
            parts.append(_summarise("Not in the model", unexpected))
        if wrong:
            parts.append(_summarise("Shape mismatch", wrong))
        parts.append("Check that the model name/config matches the checkpoint (variant, window size, "
                     "number of classes); pass the matching overrides to create_model.")
        raise ValueError("\n".join(parts))


def assign_params(model: nnx.Module, params: Mapping[str, np.ndarray], *, source: str = "checkpoint") -> nnx.Module:
    """Write `{flaxzoo path: array}` into `model` in place, after checking keys and shapes."""
    state = nnx.state(model, nnx.Param)
    flat = nnx.to_flat_state(state)
    expected = {path_str(p): tuple(v.get_value().shape) for p, v in flat}
    check_mapping(expected, {k: np.shape(v) for k, v in params.items()}, source=source)
    for p, v in flat:
        old = v.get_value()
        v.set_value(jnp.asarray(params[path_str(p)], dtype=old.dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


# flaxzoo-native weights: safetensors keyed by flaxzoo parameter paths, tagged in the metadata with the
# registered model name and the constructor settings that differ from its preset, so the file alone
# rebuilds the model (`flaxzoo.load_pretrained(path)`).
NATIVE_FORMAT = "flaxzoo"
NATIVE_FILE = "model.safetensors"  # what a training run writes into its workdir


def save_params(model: nnx.Module, path: str | os.PathLike, *, model_name: str = "",
                model_kwargs: Mapping[str, Any] | None = None, overwrite: bool = False) -> None:
    """Save a model's parameters as flaxzoo-native safetensors. Refuses to overwrite unless asked.

    model_name: the registered name the model was built from; model_kwargs: the keyword overrides it was
    built with (`create_model(model_name, **model_kwargs)`). Only the settings that differ from the preset
    are recorded. The file gets the permissions of any other file this process writes (umask).
    """
    from safetensors.numpy import save_file

    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; give a file name ending in .safetensors.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass overwrite=True.")
    settings = _changed_settings(model_name, dict(model_kwargs or {}))
    metadata = {"format": NATIVE_FORMAT, "model": model_name, "kwargs": json.dumps(_encode(settings, "model_kwargs"))}
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    tensors = {path_str(p): np.ascontiguousarray(np.asarray(v.get_value())) for p, v in flat}
    with atomic_path(path) as tmp:  # never a half-written file under the final name
        save_file(tensors, tmp, metadata=metadata)




def _changed_settings(model_name: str, kwargs: dict) -> dict:
    """The keyword overrides that differ from the registered preset (all of them if the name is unknown)."""
    if not model_name:
        return kwargs
    from flaxzoo.models.registry import get_spec

    try:
        preset = get_spec(model_name).kwargs
    except ValueError:
        return kwargs
    return {k: v for k, v in kwargs.items() if k not in preset or _encode(preset[k], k) != _encode(v, k)}


def _encode(value, where: str):
    """JSON-ready form of a constructor setting: tuples/lists become lists, dtypes their names."""
    if isinstance(value, Mapping) or hasattr(value, "to_dict"):  # dict or ml_collections.ConfigDict
        items = value.to_dict() if hasattr(value, "to_dict") else value
        return {str(k): _encode(v, f"{where}.{k}") for k, v in items.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    try:
        return {"__dtype__": np.dtype(value).name}
    except TypeError:
        raise TypeError(f"Cannot record the constructor setting {where}={value!r} in a weights file: only numbers, "
                        f"strings, booleans, None, dtypes and lists/tuples/dicts of them can be stored. Build the "
                        f"model from a preset with plain settings, or save it without model_kwargs.") from None


def _decode(value, like):
    """Inverse of `_encode`; `like` is the preset or constructor default, whose container types are restored."""
    if isinstance(value, dict):
        if set(value) == {"__dtype__"}:
            return jnp.dtype(value["__dtype__"])
        return {k: _decode(v, like.get(k) if isinstance(like, Mapping) else None) for k, v in value.items()}
    if isinstance(value, list):
        items = [_decode(v, like[i] if isinstance(like, (list, tuple)) and i < len(like) else None)
                 for i, v in enumerate(value)]
        return items if isinstance(like, list) else tuple(items)  # the constructors take tuples for sequences
    return value


def native_metadata(path: str | os.PathLike) -> dict | None:
    """{"model": name, "kwargs": {...}} of a flaxzoo-native file, or None if the file is not flaxzoo-native.

    The kwargs come back as the constructor had them (tuples, dtypes), not as JSON lists and strings.
    """
    path = os.fspath(path)
    if not path.lower().endswith(".safetensors") or not os.path.isfile(path):
        return None
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != NATIVE_FORMAT:
        return None
    name = meta.get("model", "")
    try:
        stored = json.loads(meta.get("kwargs") or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: its recorded model settings are not valid JSON ({e}); the file was edited or "
                         f"truncated. Load it with flaxzoo.load_pretrained(name, path, **settings).") from None
    return {"model": name, "kwargs": {k: _decode(v, _default(name, k)) for k, v in stored.items()}}


def _default(model_name: str, key: str):
    """The preset's value of `key`, else the constructor's default (for restoring container types)."""
    if not model_name:
        return None
    from flaxzoo.models.registry import get_spec

    try:
        spec = get_spec(model_name)
    except ValueError:
        return None
    if key in spec.kwargs:
        return spec.kwargs[key]
    try:
        builder = spec.builder.__init__ if isinstance(spec.builder, type) else spec.builder
        param = inspect.signature(builder).parameters.get(key)
    except (TypeError, ValueError):
        return None
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def native_model_name(path: str | os.PathLike) -> str | None:
    """The model name stored in a flaxzoo-native file, or None if the file is not flaxzoo-native."""
    meta = native_metadata(path)
    return None if meta is None else meta["model"]


def resolve_weights_path(path: str | os.PathLike) -> str:
    """A weights file, or a training run's workdir (the `model.safetensors` inside it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inner = os.path.join(path, NATIVE_FILE)
        if not os.path.isfile(inner):
            raise FileNotFoundError(f"{path} is a folder without {NATIVE_FILE}; a training run writes it into its "
                                    f"workdir when it finishes. Pass a weights file or a finished run's workdir.")
        return inner
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file {path} does not exist")
    return path
