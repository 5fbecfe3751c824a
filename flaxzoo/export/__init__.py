"""Export a flaxzoo model as an artefact that runs without flaxzoo: a serialized jax.export program,
ONNX or TFLite, and check it against the model in a fresh process.

    from flaxzoo import export as fx
    model = flaxzoo.create_model("maxim_tiny")
    fx.export(model, (1, 64, 64, 3), format="jax", dynamic=("batch", "height", "width"), path="maxim.jaxexport")
    restore = fx.load("maxim.jaxexport")          # numpy in, numpy out
    outputs, info = fx.run_fresh("maxim.jaxexport", [x1, x2])   # another process, no flaxzoo import

`preprocess=True` puts the pre/post-processing in the artefact: a restorer takes uint8 images of any
size (>= 2x2) and returns uint8 images of the same size; a classifier takes uint8 images and
normalises them itself. What each model allows to be symbolic: see flaxzoo/export/shapes.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np

from flaxzoo.export.runner import SUFFIXES, format_of, open_artefact
from flaxzoo.export.shapes import ExportError, check_dynamic, check_example, input_struct

FORMATS = ("jax", "onnx", "tflite")
SUFFIX = {fmt: suffix for suffix, fmt in SUFFIXES.items()}
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")

__all__ = ["export", "load", "run_fresh", "reference_function", "image_channels", "ExportError", "FORMATS", "SUFFIX"]


def _describe(model) -> str:
    return type(model).__name__


def image_channels(model) -> int | None:
    """Input channels of an image model (MAXIM's config, Swin's patch embedding, UoEViT's conv); None if unknown."""
    config, embed = getattr(model, "config", None), getattr(model, "patch_embed", None)
    for value in (getattr(config, "in_channels", None), getattr(embed, "in_chans", None),
                  getattr(embed, "in_features", None)):
        if value is not None:
            return int(value)
    return None


def _normalisation(model, mean, std):
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return (cfg.get("mean") if mean is None else mean), (cfg.get("std") if std is None else std)


def reference_function(model, *, preprocess: bool = False, mean=None, std=None):
    """The program an artefact of `model` computes, as a Python function of the input (for checks)."""
    from flaxzoo.export.program import model_function

    mean, std = _normalisation(model, mean, std)
    return model_function(model, preprocess=preprocess, mean=mean, std=std)


def input_dtype(model, preprocess: bool):
    from flaxzoo.export.program import model_kind

    kind = model_kind(model)
    return np.int32 if kind == "tokens" else (np.uint8 if preprocess else np.float32)


def export(model, input_spec: Sequence[int], *, format: str = "jax", dynamic: Sequence[str] | str = ("batch",),
           preprocess: bool = False, mean=None, std=None, quantize: str | None = None,
           platforms: Sequence[str] = ("cpu", "cuda"), path: str | None = None, overwrite: bool = False) -> bytes:
    """The model in eval mode with its weights, as the bytes of an artefact (also written to `path`).

    input_spec: one concrete input shape, e.g. (1, 64, 64, 3) or (2, 128); the axes named in `dynamic`
    ("batch", "height", "width"; "length" for token models) become symbolic. quantize (TFLite only):
    None, "fp16" or "int8" (dynamic range). platforms (jax only): the jax.export lowering platforms.
    An existing `path` is never replaced unless overwrite=True.
    """
    from flaxzoo.export.program import model_kind, routes_tokens
    from flaxzoo.files import write_atomic

    if format not in FORMATS:
        raise ExportError(f"format={format!r} is not one of {', '.join(FORMATS)}.")
    if quantize is not None and (format != "tflite" or quantize not in ("fp16", "int8")):
        raise ExportError(f"quantize={quantize!r}: only TFLite artefacts are quantised, with 'fp16' or 'int8'.")
    if path is not None:
        if format_of(path) != format:
            raise ExportError(f"path {path} does not end in {SUFFIX[format]}, the suffix of {format} artefacts.")
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists; choose another path (or pass overwrite=True to replace it).")
    kind, what = model_kind(model), _describe(model)
    multiple = tuple(model.size_multiple) if kind == "restore" else None
    dynamic = check_dynamic(dynamic, kind, routed=routes_tokens(model), preprocess=preprocess, what=what)
    check_example(input_spec, kind, channels=image_channels(model), multiple=multiple, preprocess=preprocess, what=what)
    struct = input_struct(input_spec, input_dtype(model, preprocess), dynamic, kind, multiple=multiple,
                          preprocess=preprocess)
    fn = reference_function(model, preprocess=preprocess, mean=mean, std=std)
    data = _convert(fn, struct, format, quantize=quantize, platforms=platforms, what=what, routed=routes_tokens(model))
    if path is not None:
        if os.path.exists(path) and not overwrite:  # made meanwhile: still never replaced
            raise FileExistsError(f"{path} exists; choose another path (or pass overwrite=True to replace it).")
        write_atomic(path, data)
    return data


def _convert(fn, struct, format: str, *, quantize, platforms, what: str, routed: bool) -> bytes:
    if format == "jax":
        from flaxzoo.export import jax_program

        return jax_program.to_bytes(fn, struct, platforms=platforms)
    try:
        if format == "onnx":
            from flaxzoo.export import onnx_graph

            return onnx_graph.to_bytes(fn, struct)
        from flaxzoo.export import tflite_graph

        return tflite_graph.to_bytes(fn, struct, quantize=quantize)
    except ImportError:
        raise
    except Exception as e:  # the converter's own error: say which format cannot express what
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        extra = (" UoE routing (top-k over positions, argsort, scatter-add) is what it could not express."
                 if routed else "")
        raise ExportError(f"{what} cannot be exported to {format}: the converter failed with "
                          f"{type(e).__name__}: {reason}.{extra} The jax format exports every flaxzoo model.") from e


def load(path: str):
    """An artefact file -> a function numpy array -> numpy array (jax, onnxruntime or LiteRT inside)."""
    return open_artefact(path)


def run_fresh(path: str, inputs: Sequence[np.ndarray], *, repeat: int = 0, python: str | None = None,
              env: dict | None = None, timeout: float = 600) -> tuple[list[np.ndarray], dict]:
    """Run an artefact in a new Python process that never imports flaxzoo (runner.py); returns its
    outputs and its report ({"seconds": {...}, "flaxzoo_imported": False})."""
    format_of(path)
    with tempfile.TemporaryDirectory(prefix="flaxzoo-export-") as tmp:
        src, dst = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(src, **{f"x{i}": np.asarray(x) for i, x in enumerate(inputs)})
        cmd = [python or sys.executable, RUNNER, os.path.abspath(path), src, dst] + (["--repeat", str(repeat)] if repeat else [])
        # The runner's folder is its sys.path[0]; no file there is named like a package it imports.
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp)
        if done.returncode:
            raise RuntimeError(f"Running {path} in a fresh process failed:\n{done.stderr[-3000:]}")
        with np.load(dst, allow_pickle=False) as out:
            outputs = [out[f"x{i}"] for i in range(len(inputs))]
        return outputs, json.loads(done.stdout.strip().splitlines()[-1])
