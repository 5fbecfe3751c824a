"""flaxzoo.export, TFLite: jax2tf + TensorFlow's TFLite converter, run by the LiteRT interpreter in a
fresh process with no flaxzoo import. Fixed shapes (the converter cannot lower the symbolic-batch gather
of Swin's relative position bias); float32 within 1e-4 of the model, fp16 and dynamic-range int8 within
the stated, measured error. UoE routing does not convert: a clear ExportError, tested.
Needs tensorflow-cpu and ai-edge-litert (about 1.5 GB): skipped without them; slow."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import flaxzoo
from flaxzoo import export as fx

pytest.importorskip("tensorflow", reason="TFLite export needs TensorFlow: pip install tensorflow-cpu ai-edge-litert")
pytest.importorskip("ai_edge_litert", reason="TFLite checks need the LiteRT interpreter: pip install ai-edge-litert")
pytestmark = pytest.mark.slow
# Max |artefact - model| on swin_test_tiny logits (random weights, logits of order 1), per quantisation.
TOL = {None: 1e-4, "fp16": 1e-3, "int8": 2e-2}  # measured: fp16 1.2e-4, int8 2.7e-3


@pytest.mark.parametrize("quantize", [None, "fp16", "int8"])
def test_swin_tflite(tmp_path, quantize):
    model = flaxzoo.create_model("swin_test_tiny")
    path = str(tmp_path / f"swin_{quantize}.tflite")
    fx.export(model, (2, 64, 64, 3), format="tflite", dynamic=(), quantize=quantize, path=path)
    x = np.random.default_rng(0).random((2, 64, 64, 3), np.float32)
    (y,), info = fx.run_fresh(path, [x])
    assert info["flaxzoo_imported"] is False
    want = np.asarray(jax.jit(fx.reference_function(model))(x))
    err = float(np.abs(y - want).max())
    print(f"swin_test_tiny tflite quantize={quantize}: max error {err:.3g}")
    assert err <= TOL[quantize]


def test_maxim_tflite(tmp_path):
    model = flaxzoo.create_model("maxim_tiny")
    path = str(tmp_path / "maxim.tflite")
    fx.export(model, (1, 32, 32, 3), format="tflite", dynamic=(), path=path)
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    (y,), _ = fx.run_fresh(path, [x])
    np.testing.assert_allclose(y, np.asarray(jax.jit(fx.reference_function(model))(x)), atol=1e-4)


def test_uoe_routing_is_not_expressible_in_tflite():
    with pytest.raises(fx.ExportError, match="cannot be exported to tflite.*UoE routing"):
        fx.export(flaxzoo.create_model("uoe_lm_tiny"), (2, 16), format="tflite", dynamic=())
