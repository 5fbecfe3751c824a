"""Latency of exported artefacts against the JAX model on CPU, measured in one run.

    python -m flaxzoo.export.benchmark [--repeat 10] [--models swin_tiny_patch4_window7_224,maxim_tiny,uoe_lm_tiny]

For each model: the JAX model (jax.jit over (weights, input), in this process, measured before and
after the artefacts to show drift from other load on the machine) and every format that
can express it, each artefact run in a fresh process without flaxzoo (runner.py); best of --repeat
calls after one warm-up call, one input (batch 1). Formats whose packages are missing are reported
as such. Prints Markdown rows for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time

import jax
import numpy as np
from flax import nnx

import flaxzoo
from flaxzoo import export as fx

CASES = {  # name: (input shape, [(format, quantize)])
    "swin_tiny_patch4_window7_224": ((1, 224, 224, 3), [("jax", None), ("onnx", None), ("tflite", None),
                                                         ("tflite", "int8")]),
    "maxim_tiny": ((1, 64, 64, 3), [("jax", None), ("tflite", None)]),
    "uoe_lm_tiny": ((1, 128), [("jax", None)]),
}


def _final(out):
    while isinstance(out, (list, tuple)):  # MAXIM: the last stage's full-size output, as the artefacts
        out = out[-1]
    return out


def best_of(fn, x, repeat: int) -> float:
    fn(x)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--models", default=",".join(CASES))
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print("| model | input | artefact | size MiB | ms / call | vs JAX | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            shape, formats = CASES[name]
            model = flaxzoo.create_model(name)
            x = rng.integers(0, 128, shape).astype(np.int32) if len(shape) == 2 else rng.random(shape, np.float32)
            graphdef, state = nnx.split(model)
            jitted = jax.jit(lambda s, x: _final(nnx.merge(graphdef, s)(x)))
            ref = functools.partial(jitted, state)
            base = best_of(ref, x, args.repeat)
            want = np.asarray(ref(x))
            print(f"| {name} | {shape} | JAX model (jit) | | {base * 1e3:.1f} | 1.00 | |", flush=True)
            for fmt, quantize in formats:
                label = fmt + (f" {quantize}" if quantize else "")
                path = os.path.join(tmp, f"{name}-{fmt}-{quantize}{fx.SUFFIX[fmt]}")
                try:
                    data = fx.export(model, shape, format=fmt, dynamic=(), quantize=quantize, path=path)
                    (y,), info = fx.run_fresh(path, [x], repeat=args.repeat)
                except ImportError as e:
                    print(f"| {name} | {shape} | {label} | | not installed: {str(e)[:60]} | | |", flush=True)
                    continue
                sec = info["seconds"]["x0"]
                diff = float(np.abs(y.astype(np.float64) - want).max())
                print(f"| {name} | {shape} | {label} | {len(data) / 2**20:.1f} | {sec * 1e3:.1f} | "
                      f"{sec / base:.2f} | {diff:.2g} |", flush=True)
            again = best_of(ref, x, args.repeat)
            print(f"| {name} | {shape} | JAX model (jit), again | | {again * 1e3:.1f} | {again / base:.2f} | |",
                  flush=True)


if __name__ == "__main__":
    main()
