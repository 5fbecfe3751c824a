"""Run an exported artefact with no flaxzoo code, the way a deployment would.

    python runner.py ARTEFACT INPUTS.npz OUTPUTS.npz [--repeat N]

Loads ARTEFACT (.jaxexport: jax.export.deserialize; .onnx: onnxruntime; .tflite: the LiteRT
interpreter), runs it on every array of INPUTS.npz (x0, x1, ...), writes the results under the same
names and prints one JSON line: seconds per call (best of N after a warm-up call, with --repeat)
and whether flaxzoo was imported (it must not be). flaxzoo.export.load uses open_artefact too.
This file imports only numpy and the artefact's own runtime, never flaxzoo.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

SUFFIXES = {".jaxexport": "jax", ".onnx": "onnx", ".tflite": "tflite"}


def format_of(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown artefact type {suffix or '(no suffix)'!r}; exported files end in "
                         f"{', '.join(SUFFIXES)}.")
    return SUFFIXES[suffix]


def open_artefact(path: str):
    """path -> a function numpy array -> numpy array (the artefact's one output)."""
    fmt = format_of(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist.")
    if fmt == "jax":
        import jax

        with open(path, "rb") as f:
            exported = jax.export.deserialize(bytearray(f.read()))
        call = jax.jit(exported.call)
        return lambda x: np.asarray(call(x))
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.ascontiguousarray(x)})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    state = {"shape": None}

    def run(x):
        inp = interpreter.get_input_details()[0]
        if state["shape"] != x.shape:  # dynamic axes: resize the input, then plan memory again
            interpreter.resize_tensor_input(inp["index"], list(x.shape), strict=False)
            interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

    return run


def main(argv: list[str]) -> int:
    artefact, inputs, outputs = argv[:3]
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 0
    run = open_artefact(artefact)
    results, seconds = {}, {}
    with np.load(inputs, allow_pickle=False) as data:
        for key in data.files:
            x = data[key]
            results[key] = run(x)
            if repeat:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    run(x)
                    times.append(time.perf_counter() - start)
                seconds[key] = min(times)
    np.savez(outputs, **results)
    print(json.dumps({"seconds": seconds, "flaxzoo_imported": "flaxzoo" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
