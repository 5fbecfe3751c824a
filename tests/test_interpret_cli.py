"""scripts/interpret.py end to end on a tiny random Swin: features.json, report.html, PNG grids, the tree."""
import json

import numpy as np
import pytest

from flaxzoo.scripts import interpret


@pytest.mark.slow  # ~20 s: model compiles for capture and steering
def test_interpret_writes_report_grids_and_tree(tmp_path, capsys):
    images = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "report"
    argv = ["--model", "swin_test_tiny", "--layer", "layers.1.blocks.1.mlp", "--data", str(tmp_path / "images.npy"),
            "--k", "6", "--sparsity", "0.1", "--max-iter", "30", "--hierarchy", "3", "--top", "5",
            "--out", str(out)]
    assert interpret.main(argv) == 0
    doc = json.loads((out / "features.json").read_text())
    assert doc["k"] == 6 and len(doc["features"]) == 6 and doc["d_mlp"] == 64
    assert doc["tree"]["ranks"] == [6, 3] and len(doc["tree"]["levels"][0]) == 3
    feature = doc["features"][0]
    assert feature["num_neurons"] == 7 and len(feature["top_inputs"]) <= 5  # ceil(0.1 * 64) neurons
    assert feature["outputs"]["method"].startswith("causal")  # stage 1 is narrower than the head
    assert (out / feature["grid"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Feature 5" in (out / "report.html").read_text()
    assert interpret.main(argv) == 2  # an existing report is kept
    assert "--overwrite" in capsys.readouterr().err


def test_interpret_usage_errors(capsys):
    assert interpret.main(["--model", "swin_test_tiny", "--layer", "nope", "--data", "offline:textures",
                           "--out", "/nonexistent/x"]) == 2
    assert "no MLP layer at 'nope'" in capsys.readouterr().err
    assert interpret.main(["--layer", "list"]) == 2
    assert "--model" in capsys.readouterr().err
