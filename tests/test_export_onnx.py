"""flaxzoo.export, ONNX: converted by jax2onnx, run by onnxruntime in a fresh process with no flaxzoo
import, equal to the model within 1e-4 on two batch sizes. Where jax2onnx or onnxruntime cannot express
a model (MAXIM's antialiased resize, UoE routing's one-hot/top-k), export raises one ExportError naming
the format and the reason. Needs the export extra (see README "Deploy (export)"): skipped without it,
and slow (a conversion takes seconds), so it runs in `make test-all`."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import flaxzoo
from flaxzoo import export as fx

pytest.importorskip("jax2onnx", reason="ONNX export needs the export extra: pip install 'flaxzoo[export]' and "
                    "pip install --no-deps jax2onnx (see README, Deploy (export))")
pytest.importorskip("onnxruntime", reason="needs onnxruntime (the export extra)")
pytestmark = pytest.mark.slow
TOL = 1e-4


def test_swin_onnx_symbolic_batch(tmp_path):
    model = flaxzoo.create_model("swin_test_tiny")
    path = str(tmp_path / "swin.onnx")
    fx.export(model, (1, 64, 64, 3), format="onnx", dynamic=("batch",), path=path)
    rng = np.random.default_rng(0)
    xs = [rng.random((1, 64, 64, 3), np.float32), rng.random((2, 64, 64, 3), np.float32)]
    outs, info = fx.run_fresh(path, xs)
    assert info["flaxzoo_imported"] is False
    want = np.asarray(jax.jit(fx.reference_function(model))(np.concatenate(xs)))
    np.testing.assert_allclose(np.concatenate(outs), want, atol=TOL)


def test_swin_onnx_with_preprocessing(tmp_path):
    model = flaxzoo.create_model("swin_test_tiny")
    path = str(tmp_path / "swin_raw.onnx")
    fx.export(model, (1, 64, 64, 3), format="onnx", dynamic=("batch",), preprocess=True, path=path)
    image = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    (y,), _ = fx.run_fresh(path, [image])
    mean, std = np.array(model.pretrained_cfg["mean"]), np.array(model.pretrained_cfg["std"])
    want = np.asarray(model(((image / 255.0 - mean) / std).astype(np.float32)))
    np.testing.assert_allclose(y, want, atol=TOL)


@pytest.mark.parametrize("name,shape", [("maxim_tiny", (1, 32, 32, 3)), ("uoe_lm_tiny", (2, 16))])
def test_models_onnx_cannot_express_fail_clearly(name, shape):
    model = flaxzoo.create_model(name)
    reason = "antialias" if name.startswith("maxim") else "UoE routing"
    with pytest.raises(fx.ExportError, match=f"cannot be exported to onnx.*{reason}"):
        fx.export(model, shape, format="onnx", dynamic=())
