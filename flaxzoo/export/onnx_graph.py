"""ONNX through jax2onnx (the jaxpr of the program, weights as initializers); run with onnxruntime."""
from __future__ import annotations

import jax

INSTALL = "pip install 'flaxzoo[export]' (or: pip install --no-deps jax2onnx onnx onnx-ir onnxruntime sympy)"


def to_bytes(fn, struct: jax.ShapeDtypeStruct) -> bytes:
    import logging

    # jax2onnx logs a warning with a traceback for each optional plugin (equinox, dm-pix) it cannot import.
    logging.getLogger("jax2onnx").setLevel(logging.ERROR)
    try:
        from jax2onnx import to_onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs jax2onnx, onnx and onnxruntime ({e}); {INSTALL}.") from None
    import onnxruntime

    proto = to_onnx(fn, inputs=[struct], model_name="flaxzoo", input_names=["input"], output_names=["output"])
    data = proto.SerializeToString()
    try:  # a graph onnxruntime cannot run is no deliverable: fail here, naming the operator
        onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise RuntimeError(f"onnxruntime {onnxruntime.__version__} cannot run the converted graph: "
                           f"{str(e).strip().splitlines()[0]}") from e
    return data
