"""Config files and their command-line overrides: `--config path.py[:arg] --config.a.b=value`.

The same syntax as ml_collections' config_flags, with errors a user can act on: a missing file, a
misspelt key (with close matches), a value of the wrong type are each one ConfigError naming the
field. Values are parsed to the type of the field they replace. `model.kwargs` also takes keys the
config file does not set, so any constructor argument of the model can be given; `check_config`
then checks them against the constructor's signature.
"""
from __future__ import annotations

import ast
import importlib.util
import os

import ml_collections

from flaxzoo.train.config_check import ConfigError, close_matches

# Sub-configs that accept keys the config file does not define (checked later against the model).
OPEN_KEYS = ("model.kwargs",)


def load_config(spec: str) -> ml_collections.ConfigDict:
    """'configs/swin/textures.py' or 'path.py:arg' -> get_config(arg)."""
    path, _, arg = spec.partition(":")
    if not path:
        raise ConfigError("--config is empty: pass a config file, e.g. --config configs/swin/textures.py.")
    if not os.path.isfile(path):
        what = "is a folder" if os.path.isdir(path) else "does not exist"
        raise ConfigError(f"config file {path} {what}: pass a config file, e.g. --config configs/swin/textures.py "
                          f"(the files are configs/<family>/<task>.py).")
    module_spec = importlib.util.spec_from_file_location("flaxzoo_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # an error inside the config file is a bug there: traceback
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} has no get_config() function: a config file defines "
                          f"get_config(arg=None) returning an ml_collections.ConfigDict.")
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"get_config() of {path} returned {type(config).__name__}, not an "
                          f"ml_collections.ConfigDict.")
    return config


def apply_override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Set `config.<key>` (dotted) from its command-line text, parsed to the field's type."""
    *parents, name = key.split(".")
    node, where = config, []
    for part in parents:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise _unknown(config, ".".join(where + [part]), node)
        node, where = node[part], where + [part]
    if not isinstance(node, ml_collections.ConfigDict):
        raise ConfigError(f"--config.{key}: {'.'.join(where)} is a value, not a group of fields.")
    parent = ".".join(where)
    if name not in node:
        if parent not in OPEN_KEYS:
            raise _unknown(config, key, node)
        new = _literal(text)
        with node.unlocked():
            node[name] = new
        return
    old = node[name]
    if isinstance(old, ml_collections.ConfigDict):
        raise ConfigError(f"--config.{key} is a group of fields: set them one by one, "
                          f"e.g. --config.{key}.{next(iter(old.keys()), 'field')}=...")
    value = parse_value(text, old, key)
    try:
        node[name] = value
    except (TypeError, ValueError) as e:  # ml_collections is type-safe: it refuses a change of type
        raise ConfigError(f"--config.{key}={text}: {e}") from None


def parse_value(text: str, old, key: str):
    """Command-line text -> a value of the same type as `old` (the field's current value)."""
    def wrong(kind):
        return ConfigError(f"--config.{key}={text!r} is not {kind} (the field is {old!r}): "
                           f"pass --config.{key}=<{kind}>.")

    if isinstance(old, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise wrong("true or false")
    if isinstance(old, int):
        try:
            return int(text)
        except ValueError:
            raise wrong("an integer") from None
    if isinstance(old, float):
        try:
            return float(text)
        except ValueError:
            raise wrong("a number") from None
    if isinstance(old, str):
        return text
    if isinstance(old, (tuple, list)):
        value = _literal(text)
        if not isinstance(value, (tuple, list)):
            raise wrong("a tuple such as '(2, 2)'")
        return type(old)(value)
    return _literal(text)  # None or another type: a Python literal, else the plain string


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # plain strings need no quotes: --config.data.train=offline:textures


def _unknown(config, key: str, node) -> ConfigError:
    candidates = [k for k, _ in flat_fields(config)] + [k for k, v in _groups(config)]
    siblings = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
    hint = close_matches(key, candidates) or close_matches(key.rsplit(".", 1)[-1], siblings)
    return ConfigError(f"--config.{key}: the config has no field {key!r}.{hint} "
                       f"See the fields with --help --config <file>.")


def _groups(config, prefix=""):
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict):
            yield prefix + k, v
            yield from _groups(v, prefix + k + ".")


def flat_fields(config, prefix: str = "") -> list[tuple[str, object]]:
    """Every leaf field as ('a.b.c', value), in the config's order."""
    out = []
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict) and len(v):
            out += flat_fields(v, prefix + k + ".")
        else:
            out.append((prefix + k, v))
    return out


def split_overrides(argv: list[str], name: str = "config") -> tuple[list[str], list[tuple[str, str]]]:
    """Take `--config.a.b=v` / `--config.a.b v` out of argv: (the other args, [(a.b, v), ...])."""
    rest, overrides, i = [], [], 0
    prefix = f"--{name}."
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(prefix):
            key, eq, value = arg[len(prefix):].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg} has no value: write {arg}=<value>.")
                value, i = argv[i + 1], i + 1
            overrides.append((key, value))
        else:
            rest.append(arg)
        i += 1
    return rest, overrides
