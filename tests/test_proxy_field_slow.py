"""Slow proxy-node field checks (`make test-all`): the fit_shape CLI end to end, resuming a fit, baselines."""
import json

import jax
import numpy as np
import pytest
import trimesh
from PIL import Image

import flaxzoo
from flaxzoo.scripts import fit_shape

pytestmark = pytest.mark.slow


def test_fit_shape_writes_metrics_mesh_renders_and_edit(tmp_path):
    out = tmp_path / "fit"
    argv = ["--shape", "builtin:torus", "--preset", "proxy_field_tiny", "--out", str(out), "--steps", "150",
            "--batch-size", "8", "--points", "8192", "--lr", "1e-2", "--resolution", "40", "--render-size", "64",
            "--edit", "2:3:0,0,0.3"]
    assert fit_shape.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chamfer_l1"] < 0.05 and metrics["iou"] > 0.7
    assert metrics["edit"]["max_change_outside_support"] <= 1e-6 < metrics["edit"]["max_change_inside_support"]
    mesh = trimesh.load(out / "mesh.ply", force="mesh", process=False)
    assert len(mesh.faces) > 100 and mesh.visual.kind == "vertex"
    render = np.asarray(Image.open(out / "render.png"))
    edit = np.asarray(Image.open(out / "edit.png"))
    assert render.shape == (128, 192, 3) and edit.shape == (256, 192, 3)
    assert not np.array_equal(edit[:128], edit[128:])  # the edit shows
    assert (out / "edited_mesh.ply").exists()
    assert fit_shape.main(argv) == 2  # the outputs exist now: refused without --overwrite


def test_a_fit_resumes_from_its_checkpoint(tmp_path, capsys):
    from flaxzoo.train.config_file import load_config
    from flaxzoo.train.loop import train

    config = load_config("configs/proxy_field/fit.py:builtin:sphere")
    config.model.name = "proxy_field_tiny"
    config.data.source_kwargs.update(dict(num_points=4096, chunk=256))
    config.batch_size, config.total_steps, config.checkpoint_every, config.log_every = 4, 20, 10, 10
    train(config, str(tmp_path / "run"), devices=jax.devices()[:1])
    config.total_steps = 30
    state = train(config, str(tmp_path / "run"), devices=jax.devices()[:1])
    assert "Resumed from step 20" in capsys.readouterr().out and int(state.step) == 30
    reloaded = flaxzoo.load_pretrained(str(tmp_path / "run"))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(reloaded(x)[0]), np.asarray(state.model()(x)[0]), atol=1e-5)


@pytest.mark.parametrize("name", ["field_baseline_mlp", "field_baseline_grid"])
def test_baselines_fit_through_the_same_task(tmp_path, name):
    out = tmp_path / name
    assert fit_shape.main(["--shape", "builtin:sphere", "--preset", name, "--out", str(out), "--steps", "150",
                           "--batch-size", "8", "--points", "8192", "--lr", "1e-2", "--resolution", "32",
                           "--render-size", "48"]) == 0
    assert json.loads((out / "metrics.json").read_text())["iou"] > 0.8
