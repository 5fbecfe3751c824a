"""flaxzoo.export, jax format: each artefact is reloaded in a fresh process that never imports flaxzoo
(flaxzoo/export/runner.py) and equals the model on two input sizes where an axis is symbolic; what a
model cannot make symbolic is a clear ExportError. ONNX: test_export_onnx.py; TFLite: test_export_tflite.py.
Tolerance: 1e-4 absolute for float outputs (the same StableHLO, compiled again: fusion order may differ),
exact for the uint8 restorer (it must equal flaxzoo.eval.restore.restore_image)."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import flaxzoo
from flaxzoo import export as fx
from flaxzoo.eval.restore import restore_image
from flaxzoo.scripts import export as export_cli

TOL = 1e-4
rng = np.random.default_rng(0)


def reference(model, x, **kw):
    return np.asarray(jax.jit(fx.reference_function(model, **kw))(x))


def test_swin_symbolic_batch_reloads_without_flaxzoo(tmp_path):
    model = flaxzoo.create_model("swin_test_tiny")
    path = str(tmp_path / "swin.jaxexport")
    fx.export(model, (1, 64, 64, 3), format="jax", dynamic=("batch",), path=path)
    xs = [rng.random((1, 64, 64, 3), np.float32), rng.random((3, 64, 64, 3), np.float32)]
    outs, info = fx.run_fresh(path, xs)
    assert info["flaxzoo_imported"] is False
    assert [y.shape for y in outs] == [(1, 10), (3, 10)]
    want = reference(model, np.concatenate(xs))  # images are independent: one compile for both checks
    np.testing.assert_allclose(np.concatenate(outs), want, atol=TOL)
    with pytest.raises(FileExistsError, match="exists"):  # never replaced
        fx.export(model, (1, 64, 64, 3), format="jax", path=path)


def test_maxim_raw_images_of_any_size_equal_restore_image(tmp_path):
    """Symbolic batch, height and width; padding to the size multiple, cropping and uint8 inside.
    One stage of the tiny preset: the same blocks, half the compile time."""
    model = flaxzoo.create_model("maxim_tiny", num_stages=1)
    path = str(tmp_path / "maxim.jaxexport")
    fx.export(model, (1, 32, 32, 3), format="jax", dynamic=("batch", "height", "width"), preprocess=True, path=path)
    images = [rng.integers(0, 256, (1, 20, 30, 3), dtype=np.uint8), rng.integers(0, 256, (2, 33, 17, 3), dtype=np.uint8)]
    outs, info = fx.run_fresh(path, images)
    assert info["flaxzoo_imported"] is False
    for batch, y in zip(images, outs):
        assert y.shape == batch.shape and y.dtype == np.uint8
        for image, restored in zip(batch, y):
            np.testing.assert_array_equal(restored, restore_image(model, image))


def test_uoe_lm_and_classifier_export_at_a_fixed_shape(tmp_path):
    for name, x in [("uoe_lm_tiny", rng.integers(0, 128, (2, 16)).astype(np.int32)),
                    ("uoe_vit_test_tiny", rng.random((2, 32, 32, 3), np.float32))]:
        model = flaxzoo.create_model(name)
        path = str(tmp_path / f"{name}.jaxexport")
        fx.export(model, x.shape, format="jax", dynamic=(), path=path)
        y = fx.load(path)(x)  # in-process load gives the same function
        np.testing.assert_allclose(y, reference(model, x), atol=TOL)


def test_what_cannot_be_symbolic_or_exported_is_one_clear_error(tmp_path):
    lm, swin = flaxzoo.create_model("uoe_lm_tiny"), flaxzoo.create_model("swin_test_tiny")
    with pytest.raises(fx.ExportError, match="routes tokens to experts.*dynamic=\\(\\)"):
        fx.export(lm, (2, 16), format="jax", dynamic=("batch",))
    with pytest.raises(fx.ExportError, match="symbolic height/width.*dynamic=\\('batch',\\)"):
        fx.export(swin, (1, 64, 64, 3), format="jax", dynamic=("batch", "height", "width"))
    with pytest.raises(fx.ExportError, match="'length' is not an input axis"):
        fx.export(swin, (1, 64, 64, 3), format="jax", dynamic=("length",))
    with pytest.raises(fx.ExportError, match="format='pb'"):
        fx.export(swin, (1, 64, 64, 3), format="pb")
    with pytest.raises(fx.ExportError, match="only TFLite artefacts are quantised"):
        fx.export(swin, (1, 64, 64, 3), format="jax", quantize="int8")
    with pytest.raises(fx.ExportError, match="multiples of \\(16, 16\\).*preprocess=True"):
        fx.export(flaxzoo.create_model("maxim_tiny"), (1, 20, 32, 3), format="jax")
    with pytest.raises(fx.ExportError, match="4 channels"):
        fx.export(swin, (1, 64, 64, 4), format="jax")
    with pytest.raises(fx.ExportError, match="does not end in .onnx"):
        fx.export(swin, (1, 64, 64, 3), format="onnx", path=str(tmp_path / "a.jaxexport"))


def test_cli_prints_size_and_difference_and_never_overwrites(tmp_path, capsys):
    out = str(tmp_path / "lm.jaxexport")
    argv = ["--model", "uoe_lm_tiny", "--format", "jax", "--size", "16", "--batch", "2", "--dynamic", "", "--out", out]
    assert export_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "MiB" in printed and "flaxzoo imported there: False" in printed
    diff = float(printed.rsplit("=", 1)[1])
    assert diff <= TOL
    before = open(out, "rb").read()
    assert export_cli.main(argv) == 2
    assert "exists" in capsys.readouterr().err and open(out, "rb").read() == before
    assert export_cli.main(["--model", "uoe_lm_tiny", "--format", "jax", "--size", "16", "--out",
                            str(tmp_path / "b.jaxexport")]) == 2  # dynamic batch: routing says no
    assert "routes tokens to experts" in capsys.readouterr().err


@pytest.mark.slow
def test_maxim_s3_multiple_of_64_symbolic_sizes(tmp_path):
    """The released S-3 structure: height/width symbolic as multiples of 64 (random weights). Its random-weight
    outputs reach ~1e3, so the tolerance is relative to their scale (1e-5 of the largest), not 1e-4 absolute."""
    model = flaxzoo.create_model("maxim_s3")
    path = str(tmp_path / "s3.jaxexport")
    fx.export(model, (1, 64, 64, 3), format="jax", dynamic=("batch", "height", "width"), path=path)
    xs = [rng.random((1, 64, 64, 3), np.float32), rng.random((1, 128, 64, 3), np.float32)]
    outs, info = fx.run_fresh(path, xs)
    assert not info["flaxzoo_imported"]
    for x, y in zip(xs, outs):
        want = reference(model, x)
        np.testing.assert_allclose(y, want, atol=1e-5 * float(np.abs(want).max()))
    with pytest.raises(fx.ExportError, match="multiples of \\(64, 64\\)"):
        fx.export(model, (1, 96, 64, 3), format="jax")


@pytest.mark.slow
def test_maxim_float_symbolic_height_width(tmp_path):
    model = flaxzoo.create_model("maxim_tiny")
    path = str(tmp_path / "maxim.jaxexport")
    fx.export(model, (1, 32, 32, 3), format="jax", dynamic=("batch", "height", "width"), path=path)
    xs = [rng.random((1, 32, 16, 3), np.float32), rng.random((2, 16, 48, 3), np.float32)]
    outs, _ = fx.run_fresh(path, xs)
    for x, y in zip(xs, outs):
        np.testing.assert_allclose(y, reference(model, x), atol=TOL)
