"""The default job (`make train`): its config, and the report it writes (summary.json + grid.png)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx
from PIL import Image

import flaxzoo
from flaxzoo import cli
from flaxzoo.eval import denoise_report
from flaxzoo.models.convert.common import save_params
from flaxzoo.scripts import denoise_report as report_cli
from flaxzoo.train.config_check import check_config
from flaxzoo.train.config_file import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "configs" / "maxim" / "default.py")
# The smoke config's MAXIM (1 stage, depth 1, 4 features): compiles in seconds; untrained, so it only has to run.
SMOKE_KWARGS = dict(features=4, num_stages=1, depth=1, num_supervision_scales=1, block_size_hr=(2, 2),
                    grid_size_hr=(2, 2), block_size_lr=(2, 2), grid_size_lr=(2, 2), conv_init_scale=0.5)


def fake_run(workdir, sigma=25.0):
    """A finished run's workdir as the loop leaves it: model.safetensors (names its model), config.json, done.json."""
    workdir.mkdir()
    model = flaxzoo.create_model("maxim_tiny", rngs=nnx.Rngs(0), **SMOKE_KWARGS)
    save_params(model, workdir / "model.safetensors", model_name="maxim_tiny", model_kwargs=SMOKE_KWARGS)
    (workdir / "config.json").write_text(json.dumps({"data": {"pp": {"sigma": sigma}}}))
    (workdir / "done.json").write_text(json.dumps({"step": 3, "model": "maxim_tiny"}))
    return workdir


def test_default_config_is_the_maxim_denoiser():
    config = load_config(DEFAULT)
    check_config(config)
    assert config.model.name.startswith("maxim") and config.task.name == "restore"
    assert config.data.train == "offline:denoise" and config.data.pp.sigma == 25.0
    model = flaxzoo.create_model(config.model.name, **config.model.kwargs)
    patch = config.data.source_kwargs.patch
    assert patch % model.size_multiple[0] == 0 and 128 % model.size_multiple[0] == 0  # training and report crops


def test_report_scores_noisy_classical_and_model(tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    argv = ["--workdir", str(run), "--crop", "16", "--count", "3"]
    assert cli.call(report_cli.run, argv) == 0
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert {"noisy", "classical", "model"} <= set(summary)
    for key in ("noisy", "classical", "model"):
        assert set(summary[key]) == {"psnr", "ssim"} and np.isfinite(summary[key]["psnr"])
    # Noise of sigma 25 on 0-255 is 20*log10(255/25) = 20.17 dB before clipping; clipping to [0, 1] only helps.
    assert 20.0 < summary["noisy"]["psnr"] < 21.5
    assert summary["classical"]["psnr"] > summary["noisy"]["psnr"] + 2  # NL-means at the true sigma
    assert "h" in summary["details"]["classical"] or "BM3D" in summary["details"]["classical"]["method"]
    assert summary["details"]["step"] == 3 and "chelsea" in summary["details"]["images"]
    # The same crops and noise as held_out() gives: the noisy score is reproducible from it.
    clean, noisy = denoise_report.held_out(16, 3, 25.0, 0)
    assert summary["noisy"]["psnr"] == pytest.approx(denoise_report.score(noisy, clean)["psnr"])
    grid = Image.open(run / "report" / "grid.png")
    assert grid.format == "PNG" and grid.width > 4 * 16 and grid.height > 3 * 16
    assert "PSNR" in capsys.readouterr().out

    before = (run / "report" / "summary.json").read_bytes()
    assert cli.call(report_cli.run, argv) == cli.EXIT_USAGE  # an existing report is kept...
    assert "--overwrite" in capsys.readouterr().err
    assert (run / "report" / "summary.json").read_bytes() == before
    assert cli.call(report_cli.run, argv + ["--overwrite"]) == 0  # ...unless asked


def test_report_mistakes(tmp_path, capsys):
    assert cli.call(report_cli.run, ["--workdir", str(tmp_path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "make train" in err and len(err.strip().splitlines()) == 1
    assert cli.call(report_cli.run, ["--workdir", str(tmp_path), "--sigma", "0"]) == cli.EXIT_USAGE
    assert "--sigma" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "report")


@pytest.mark.slow
def test_make_train_default_end_to_end(tmp_path):
    """The default job's commands as `make train` runs them, cut to a few steps: train, then the report."""
    workdir = tmp_path / "default"
    train = [sys.executable, str(ROOT / "scripts" / "train.py"), "--config", DEFAULT, "--workdir", str(workdir),
             "--config.total_steps=4", "--config.log_every=2", "--config.eval_every=4",
             "--config.checkpoint_every=4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(train, check=True, cwd=ROOT, env=env, timeout=1500)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "denoise_report.py"), "--workdir", str(workdir),
                    "--count", "2"], check=True, cwd=ROOT, env=env, timeout=600)
    summary = json.loads((workdir / "report" / "summary.json").read_text())
    assert summary["details"]["step"] == 4 and (workdir / "report" / "grid.png").exists()
