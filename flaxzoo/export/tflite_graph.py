"""TFLite through jax2tf (the program as a TF function) and TensorFlow's TFLite converter; run with the
LiteRT interpreter. Optional quantisation: "fp16" (weights stored as float16) or "int8" (dynamic-range:
int8 weights, float activations)."""
from __future__ import annotations

import jax

INSTALL = "pip install tensorflow-cpu ai-edge-litert (about 1.5 GB, so not part of flaxzoo[export])"
QUANTIZE = (None, "fp16", "int8")


def to_bytes(fn, struct: jax.ShapeDtypeStruct, *, quantize: str | None = None) -> bytes:
    try:
        import tensorflow as tf
        from jax.experimental import jax2tf
    except ImportError as e:
        raise ImportError(f"TFLite export needs TensorFlow ({e}); {INSTALL}.") from None
    shape = [d if isinstance(d, int) else None for d in struct.shape]
    poly = "(" + ", ".join(str(d) for d in struct.shape) + ")"
    tf_fn = tf.function(jax2tf.convert(fn, polymorphic_shapes=[poly], with_gradient=False), autograph=False,
                        input_signature=[tf.TensorSpec(shape, tf.as_dtype(struct.dtype))])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([tf_fn.get_concrete_function()], tf_fn)
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
