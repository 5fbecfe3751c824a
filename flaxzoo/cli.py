"""What every flaxzoo command-line tool shares: one-line errors, exit codes, `--debug`, `--weights`.

A mistake the user can fix (a bad argument, a missing file, weights of another model) ends the
program with ONE line on stderr, `error: <what is wrong and what to do>`, and exit code 2. A
traceback is for bugs: pass `--debug` to see it anyway. Exit code 1: the work ran but part of it
failed (restore.py could not read some images). Every tool, flaxzoo/scripts/<name>.py, is written so:

    def run(argv: list[str]) -> int:       # does the work; raises on a user's mistake
        args = cli.ArgumentParser(description=__doc__).parse_args(argv)
        ...

    def main(argv=None) -> int:            # the console script and scripts/<name>.py call this
        return cli.call(run, argv)

User errors are ValueError (ConfigError, UsageError and other flaxzoo error classes subclass it),
OSError (missing, unreadable, existing files) and ImportError (a missing optional dependency).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable, Sequence

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran but part of it failed (e.g. some images could not be read)
EXIT_USAGE = 2  # the user's arguments, config or files are wrong: nothing was done

DEBUG_FLAG = "--debug"


class UsageError(ValueError):
    """A command-line mistake: printed as one line, exit code 2."""


# Errors a user causes with their arguments, config or files. Anything else is a bug in flaxzoo
# and keeps its traceback. Our own error classes subclass ValueError (a bad value or file) so they
# are caught here too. OSError: missing, unreadable or existing files. ImportError: an optional
# dependency (torch, timm) is missing.
USER_ERRORS = (ValueError, OSError, ImportError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting, and knows --debug."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action="store_true",
                          help="show the full traceback of an error instead of one line")

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def one_line(exc: BaseException) -> str:
    """The message of an exception on one line.

    Multi-line messages (a key-by-key weights report) keep their first line, which says what is
    wrong, and their last, which says what to do; --debug shows the rest.
    """
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) == 1:
        return lines[0]
    return f"{lines[0]} {lines[-1]} ({DEBUG_FLAG} shows the details)"


def call(run: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """`run(argv)` -> its exit code; a user error becomes one line on stderr and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    try:
        code = run(argv)
    except SystemExit as e:  # argparse --help, or a main that exits itself
        return e.code if isinstance(e.code, int) else (0 if e.code is None else print_error(str(e.code)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if debug:
            traceback.print_exc()
        return print_error(one_line(e))
    return EXIT_OK if code is None else int(code)


def print_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


# ----------------------------------------------------------------------------- --weights


def resolve_weights(path: str) -> str:
    """--weights: a weights file, or a training run's workdir (its model.safetensors) -> the file."""
    from flaxzoo.models.convert.common import resolve_weights_path

    if not path:
        raise UsageError("--weights is empty: pass a weights file or a training run's workdir.")
    try:
        return resolve_weights_path(path)
    except FileNotFoundError as e:
        raise UsageError(f"--weights: {e} (pass a weights file: .safetensors, .npz, .pth; or a finished training "
                         f"run's workdir)") from None


def load_weights(path: str, model: str | None = None, *, family: str | None = None, **overrides):
    """Build the model for --weights (and an optional --model): the model a flaxzoo file records, checked
    against --model if both are given; reference checkpoints (official .npz, timm .pth) need --model.
    `family` ("maxim", "swin", "uoe"): the tool works only for models of that family."""
    import flaxzoo

    path = resolve_weights(path)
    recorded = check_readable(path, "--weights")
    if recorded and model and recorded != model:
        raise UsageError(f"--weights {path} holds {recorded!r} weights but --model is {model!r}: "
                         f"pass --model {recorded} or drop --model.")
    if model is None and not recorded:
        raise UsageError(f"--weights {path} does not record its model: pass --model NAME "
                         f"(see flaxzoo.list_models()).")
    name = model or recorded
    spec = flaxzoo.get_spec(name)  # an unknown name fails here, with close matches
    if family and spec.family != family:
        raise UsageError(f"{name} is a {spec.family} model; this tool needs a {family} model "
                         f"(see flaxzoo.list_models('{family}*')).")
    try:
        if recorded:
            # A training run's file: its constructor settings are in the run's config.json and, with the
            # newer load_pretrained, in the file's metadata; either rebuilds the exact model.
            run_kwargs = run_model_kwargs(path, recorded)
            if not run_kwargs and _rebuilds_from_file():
                return flaxzoo.load_pretrained(path, **overrides)
            overrides = {**run_kwargs, **overrides}
        return flaxzoo.load_pretrained(name, path, **overrides)
    except FILE_FORMAT_ERRORS as e:
        raise UsageError(f"--weights {path} is not a readable weights file ({e or type(e).__name__}).") from e


def _format_errors() -> tuple[type[BaseException], ...]:
    """What the file readers raise for an empty, truncated or wrong-format file (none is a ValueError)."""
    import zipfile

    try:
        from safetensors import SafetensorError
    except ImportError:  # a bare benchmark box: no weights files are read there
        return (zipfile.BadZipFile, EOFError)
    return (SafetensorError, zipfile.BadZipFile, EOFError)


FILE_FORMAT_ERRORS = _format_errors()


def check_readable(path: str, what: str) -> str | None:
    """Open a weights file's header (safetensors) or directory (npz), so a broken file fails before any
    model is built; returns the model name a flaxzoo-native file records (None for other files)."""
    from flaxzoo.models.convert.common import native_model_name

    try:
        recorded = native_model_name(path)
        if path.lower().endswith(".npz"):
            import numpy as np

            with np.load(path, allow_pickle=False) as f:
                f.files  # noqa: B018 - reads the zip directory: an empty or truncated file fails here
    except FILE_FORMAT_ERRORS as e:
        raise UsageError(f"{what} {path} is not a readable weights file ({e or type(e).__name__}).") from e
    return recorded


def run_model_kwargs(weights: str, model: str) -> dict:
    """The model.kwargs of the training run that wrote `weights` (its workdir's config.json), if it
    trained `model`; {} otherwise. For weight files that do not record their constructor settings."""
    import json

    config_path = os.path.join(os.path.dirname(os.path.abspath(weights)), "config.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    if config.get("model", {}).get("name") != model:
        return {}
    # JSON has no tuples; constructor arguments such as depths=(2, 2) are tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config["model"].get("kwargs", {}).items()}


def _rebuilds_from_file() -> bool:
    """Whether flaxzoo.load_pretrained(path) rebuilds a model from a weights file alone."""
    import inspect

    import flaxzoo

    params = list(inspect.signature(flaxzoo.load_pretrained).parameters.values())
    return len(params) > 1 and params[1].default is not inspect.Parameter.empty
