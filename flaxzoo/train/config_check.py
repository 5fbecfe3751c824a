"""Check a training config before anything is built, so a bad value is one clear message, not a crash
(or worse, a run that "finishes" with untrained weights) halfway through.

`check_config(config)` runs at the top of `flaxzoo.train.loop.train` and in the train CLI. It checks
intervals and sizes, learning-rate settings, the model name and every `model.kwargs` entry against
the model constructor's signature (so `--config.model.kwargs.drop_path_rate=0.1` is type-checked,
and a misspelt argument gets its close matches), the task name, and that the batch splits over the
devices of the mesh.
"""
from __future__ import annotations

import difflib
import inspect
import math

import ml_collections


class ConfigError(ValueError):
    """A config value a user can fix; the message names the field and the fix."""


def close_matches(word: str, candidates, n: int = 3) -> str:
    """' Did you mean: a, b?' or ''."""
    close = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


# Fields absent from a config (an older one) are skipped. For the non-negative ones: what 0 means.
_POSITIVE_INTS = ("total_steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints",
                  "grad_accum_steps")
_NON_NEGATIVE_INTS = {"eval_every": "0 turns evaluation off", "eval_batches": "0 evaluates the whole split",
                      "optim.warmup_steps": "0 = no warm-up"}
_NON_NEGATIVE_FLOATS = ("optim.lr", "optim.weight_decay", "optim.clip_norm", "optim.min_lr_ratio")


def check_config(config: ml_collections.ConfigDict, *, num_devices: int | None = None) -> None:
    """Raise ConfigError naming the first bad field (and the fix); return None if the config is usable."""
    for field in _POSITIVE_INTS:
        _check_int(config, field, low=1)
    for field, zero in _NON_NEGATIVE_INTS.items():
        _check_int(config, field, low=0, zero=zero)
    _check_int(config, "seed", low=None)
    for field in _NON_NEGATIVE_FLOATS:
        value = _get(config, field)
        if value is not _MISSING and (not _is_number(value) or not math.isfinite(value) or value < 0):
            raise ConfigError(f"{field}={value!r} must be a number >= 0: set --config.{field}=<value>.")
    ema = _get(config, "ema_decay")
    if ema is not _MISSING and (not _is_number(ema) or not 0 <= ema < 1):
        raise ConfigError(f"ema_decay={ema!r} must be in [0, 1) (0 turns EMA off): set --config.ema_decay=0.999 "
                          f"or 0.")
    _check_choice(config, "best_mode", ("max", "min"))
    _check_choice(config, "compute_dtype", ("float32", "bfloat16"))
    _check_task(config)
    check_model_kwargs(config.model.name, dict(config.model.kwargs))
    _check_batch_fits_mesh(config, num_devices)


# ----------------------------------------------------------------------------- scalars
_MISSING = object()


def _get(config, field: str):
    node = config
    for part in field.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(config, field: str, *, low: int | None, zero: str = "") -> None:
    value = _get(config, field)
    if value is _MISSING:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{field}={value!r} must be an integer: set --config.{field}=<integer>.")
    if low is not None and value < low:
        note = f" ({zero})" if zero else ""
        raise ConfigError(f"{field}={value} must be >= {low}{note}: set --config.{field}=<integer>.")


def _check_choice(config, field: str, choices: tuple[str, ...]) -> None:
    value = _get(config, field)
    if value is not _MISSING and value not in choices:
        raise ConfigError(f"{field}={value!r} must be one of {', '.join(choices)}: set --config.{field}=...")


def _check_task(config) -> None:
    from flaxzoo.train.tasks import TASKS

    name = config.task.name
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}.{close_matches(str(name), TASKS)} Choose from {', '.join(TASKS)} "
                          f"(--config.task.name=...).")


# ----------------------------------------------------------------------------- the model
def _signature(model_name: str) -> inspect.Signature:
    from flaxzoo.models.registry import get_spec

    builder = get_spec(model_name).builder
    # nnx.Module's metaclass hides a class's own signature behind (*args, **kwargs).
    return inspect.signature(builder.__init__ if isinstance(builder, type) else builder)


def constructor_parameters(model_name: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments a registered model's constructor takes (rngs excluded)."""
    return {k: p for k, p in _signature(model_name).parameters.items() if k not in ("self", "rngs")
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}


def _passes_on_kwargs(model_name: str) -> bool:
    """A builder function with **kwargs (e.g. swin_uoe -> SwinTransformer): other names may be fine."""
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in _signature(model_name).parameters.values())


def check_model_kwargs(model_name: str, kwargs: dict) -> None:
    """Every kwarg names a constructor argument and has a type its annotation / preset value allows."""
    from flaxzoo.models.registry import get_spec, list_models

    if not model_name:
        raise ConfigError("model.name is empty: set --config.model.name=<a name from flaxzoo.list_models()>.")
    try:
        spec = get_spec(model_name)
    except ValueError:
        raise ConfigError(f"Unknown model {model_name!r}.{close_matches(model_name, list_models())} "
                          f"See flaxzoo.list_models() for all names (--config.model.name=...).") from None
    params = constructor_parameters(model_name)
    open_ended = _passes_on_kwargs(model_name)
    for key, value in kwargs.items():
        if key not in params and not open_ended:
            raise ConfigError(f"model.kwargs.{key}: {model_name} has no argument {key!r}."
                              f"{close_matches(key, params)} Its arguments: {', '.join(params)}.")
        param = params.get(key)
        allowed = _allowed_types(param.annotation) if param else None
        example = spec.kwargs.get(key, param.default if param else None)
        if allowed is None and example not in (None, inspect.Parameter.empty):
            allowed = _allowed_types(type(example).__name__)
        if allowed is not None and not _has_type(value, allowed):
            annotation = param.annotation if param else inspect.Parameter.empty
            raise ConfigError(f"model.kwargs.{key}={value!r} has the wrong type: {model_name} takes "
                              f"{_describe(annotation, example)} (--config.model.kwargs.{key}=...).")


# Annotation names we can check; anything else (a class, a callable) is left to the constructor.
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "None": (type(None),),
          "Sequence": (tuple, list), "tuple": (tuple, list), "list": (tuple, list), "Size2": (tuple, list)}


def _allowed_types(annotation) -> tuple[type, ...] | None:
    if annotation is inspect.Parameter.empty or not isinstance(annotation, str):
        return None
    allowed = ()
    for part in annotation.split("|"):
        base = part.strip().split("[", 1)[0].strip()
        if base not in _TYPES:
            return None
        allowed += _TYPES[base]
    return allowed


def _has_type(value, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


def _describe(annotation, example) -> str:
    text = annotation if isinstance(annotation, str) else type(example).__name__
    shown = "" if example in (None, inspect.Parameter.empty) else f", e.g. {example!r}"
    return f"{text}{shown}"


# ----------------------------------------------------------------------------- devices
def _check_batch_fits_mesh(config, num_devices: int | None) -> None:
    """The global batch is split over the mesh's batch axes (data x fsdp); it must divide evenly."""
    if num_devices is None:
        import jax

        num_devices = jax.device_count()
    sizes = {axis: int(n) for axis, n in dict(config.mesh).items()}
    fixed = math.prod(n for n in sizes.values() if n != -1)
    free = [axis for axis, n in sizes.items() if n == -1]
    if len(free) == 1 and fixed and num_devices % fixed == 0:
        sizes[free[0]] = num_devices // fixed
    elif free:
        return  # the mesh itself does not fit; make_mesh says how
    ways = sizes.get("data", 1) * sizes.get("fsdp", 1)
    accum = config.get("grad_accum_steps", 1)  # each micro-batch is split over the devices too
    need = ways * accum
    if need > 0 and config.batch_size % need:
        fit = max(need, config.batch_size // need * need)
        micro = f" times grad_accum_steps={accum}" if accum > 1 else ""
        raise ConfigError(f"batch_size={config.batch_size} does not split over the {ways} devices of the batch axes "
                          f"(mesh data={sizes.get('data', 1)} x fsdp={sizes.get('fsdp', 1)} of {num_devices} "
                          f"devices){micro}: use a multiple of {need}, e.g. --config.batch_size={fit}, or change "
                          f"--config.mesh.data.")
