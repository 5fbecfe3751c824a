"""Evaluators: protocols against hand-computed values, top-k, published figures, the x8 ensemble, the
classification and LM evaluators, and flaxzoo-eval end to end on a generated SIDD-layout folder.

Fast tests use stand-in models (numpy restorers, one-layer classifiers) so nothing big compiles; the run
with a real tiny MAXIM is in test_eval_cli_with_tiny_maxim (slow)."""
import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flaxzoo.eval import classification, language, metrics, protocols, published, restoration
from flaxzoo.eval.restore import Restorer
from flaxzoo.scripts import eval as eval_cli

# ----------------------------------------------------------------------------- protocols, by hand
# target: every pixel 100 (0-255); prediction: red + 3.4, green and blue exact.
R, DR = 100.0, 3.4
C1 = (0.01 * 255) ** 2


def _ssim_const(a, b):  # SSIM of two constant images: variances 0, so only the luminance term is left
    return (2 * a * b + C1) / (a * a + b * b + C1)


Y_GAIN = 65.481 / 255  # BT.601: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
HAND = {  # protocol -> (PSNR, SSIM), written out
    "float-rgb": (20 * math.log10(255 / DR) + 10 * math.log10(3), (_ssim_const(R, R + DR) + 2) / 3),
    "uint8-rgb": (20 * math.log10(255 / 3) + 10 * math.log10(3), (_ssim_const(R, R + 3) + 2) / 3),
    "uint8-y": (20 * math.log10(255 / (3 * Y_GAIN)),
                _ssim_const(16 + Y_GAIN * R + (128.553 + 24.966) * R / 255,
                            16 + Y_GAIN * (R + 3) + (128.553 + 24.966) * R / 255)),
}
KIND = {"official": "float-rgb", "sidd": "float-rgb", "lol": "float-rgb", "fivek": "float-rgb",
        "gopro": "uint8-rgb", "hide": "uint8-rgb", "realblur": "uint8-rgb", "sots": "uint8-rgb",
        "rain": "uint8-y", "raindrop": "uint8-y"}


def test_every_protocol_has_a_hand_computed_case():
    assert set(KIND) == set(protocols.PROTOCOLS)


@pytest.mark.parametrize("name", sorted(KIND))
def test_protocol_matches_hand_computed_value(name):
    target = np.full((16, 16, 3), R / 255)
    pred = target.copy()
    pred[..., 0] += DR / 255
    scores = protocols.get(name).score(target, pred)
    expected_psnr, expected_ssim = HAND[KIND[name]]
    assert scores["psnr"] == pytest.approx(expected_psnr, abs=1e-9)
    assert scores["ssim"] == pytest.approx(expected_ssim, abs=1e-9)


def test_protocol_names_and_defaults():
    assert protocols.for_dataset("tfds:rain13k").name == "rain"
    assert protocols.for_dataset("sidd").name == "sidd"
    assert protocols.for_dataset("tfds:div2k").name == "official"
    with pytest.raises(ValueError, match="Unknown protocol 'sid'. Did you mean 'sidd'"):
        protocols.get("sid")


# ----------------------------------------------------------------------------- top-k, published
def test_topk_by_hand():
    logits = np.array([[0.1, 0.9, 0.0, 0.5],   # label 1: rank 1
                       [0.8, 0.1, 0.3, 0.6],   # label 2: rank 3
                       [0.2, 0.2, 0.2, 0.2]])  # label 3: tied with all: counts as rank 4 (a dead model scores 0)
    labels = np.array([1, 2, 3])
    for k, hits in ((1, [1, 0, 0]), (2, [1, 0, 0]), (3, [1, 1, 0]), (4, [1, 1, 1])):
        np.testing.assert_array_equal(metrics.topk_correct(logits, labels, k), hits)
    np.testing.assert_array_equal(np.asarray(metrics.topk_correct(jnp.asarray(logits), jnp.asarray(labels), 1)),
                                  [1, 0, 0])
    assert metrics.topk_accuracy(logits, labels) == {"top1": pytest.approx(1 / 3), "top5": 1.0}  # top-5 of 4: all
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        metrics.topk_accuracy(logits, np.array([1, 2, 4]))
    summary = classification.summarize(logits, labels)
    assert summary["per_class"] == {1: {"count": 1, "accuracy": 1.0}, 2: {"count": 1, "accuracy": 0.0},
                                    3: {"count": 1, "accuracy": 0.0}}
    assert summary["confusions"] == [{"true": 2, "predicted": 0, "count": 1}, {"true": 3, "predicted": 0, "count": 1}]
    assert summary["mean_per_class_accuracy"] == pytest.approx(1 / 3)


def test_published_lookup():
    assert published.lookup("maxim_s3_denoising_sidd", "sidd", "validation")["psnr"] == 39.96
    assert published.lookup("maxim_s2_deraining_rain13k", "rain13k", "rain100h")["psnr"] == 30.81
    assert published.lookup("maxim_s3_deblurring_gopro", "hide", "test")["ssim"] == 0.956
    assert published.lookup("swin_tiny_patch4_window7_224", "imagenet2012", "validation")["top1"] == 81.2
    assert published.lookup("maxim_s3_denoising_sidd", "gopro", "test") is None
    assert published.lookup("maxim_tiny", "sidd", "validation") is None
    assert published.lookup("no_such_model", "sidd", "validation") is None


# ----------------------------------------------------------------------------- the restoration evaluator
class NumpyRestorer(Restorer):
    """A restorer without a network (nothing to compile): y = f(x) on each (N, H, W, C) batch."""

    def __init__(self, fn, size_multiple=(16, 16)):
        self.fn, self.size_multiple, self.in_channels = fn, size_multiple, 3

    def __call__(self, x):
        return self.fn(np.asarray(x, np.float32))


def test_dihedral_inverse_round_trip():
    x = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    for k in range(8):
        np.testing.assert_array_equal(restoration.dihedral_inverse(restoration.dihedral(x, k), k), x)
    assert len({restoration.dihedral(x, k).tobytes() + bytes(restoration.dihedral(x, k).shape) for k in range(8)}) == 8


def test_ensemble_is_the_mean_over_the_8_transforms():
    # f adds a left-to-right ramp 0 .. 0.1: mapped back from the 8 flips/rotations of a square image the ramps
    # run along both axes in both directions, and their mean is 0.05 everywhere.
    ramp = lambda x: x + 0.1 * np.linspace(0, 1, x.shape[2])[None, None, :, None]  # noqa: E731
    x = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    out = restoration.restore(NumpyRestorer(ramp), x, ensemble=True)
    np.testing.assert_allclose(out, x + 0.05, atol=1e-6)
    np.testing.assert_allclose(restoration.restore(NumpyRestorer(ramp), x), ramp(x[None])[0], atol=1e-6)


def test_evaluator_keeps_worst_and_best_and_refuses_wild_outputs():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    noise = [0, 2, 4, 8, 16, 32, 64]  # example i: noise i -> PSNR falls with i
    examples = [{"input": np.clip(clean[i] + rng.normal(0, max(s, 1e-3), clean[i].shape), 0, 255).astype(np.uint8),
                 "target": clean[i], "name": f"img{i}"} for i, s in enumerate(noise)]
    result = restoration.evaluate(NumpyRestorer(lambda x: x), examples, protocols.get("official"), keep=2)
    psnrs = [r["psnr"] for r in result.records]
    assert psnrs == sorted(psnrs, reverse=True) and result.summary["count"] == 7
    assert [r["name"] for r in result.worst] == ["img6", "img5"]
    assert [r["name"] for r in result.best] == ["img0", "img1"]
    assert result.summary["psnr"] == pytest.approx(np.mean(psnrs))
    with pytest.raises(ValueError, match=r"far outside the image range \[0, 1\]: the weights do not fit"):
        restoration.evaluate(NumpyRestorer(lambda x: 100 * x - 50), examples, protocols.get("sidd"))
    with pytest.raises(ValueError, match="no 'target'.*online servers"):
        restoration.evaluate(NumpyRestorer(lambda x: x), [{"input": clean[0], "target": np.zeros((0, 0, 3))}],
                             protocols.get("sidd"))


# ----------------------------------------------------------------------------- flaxzoo-eval end to end
def _sidd_folder(root, rng):
    from scipy.io import savemat

    gt = rng.integers(30, 220, (2, 2, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).astype(np.uint8)
    os.makedirs(root)
    savemat(os.path.join(root, "ValidationNoisyBlocksSrgb.mat"), {"ValidationNoisyBlocksSrgb": noisy})
    savemat(os.path.join(root, "ValidationGtBlocksSrgb.mat"), {"ValidationGtBlocksSrgb": gt})
    return noisy.reshape(4, 32, 32, 3), gt.reshape(4, 32, 32, 3)


@pytest.fixture
def sidd(tmp_path):
    from flaxzoo.data import benchmarks

    noisy, gt = _sidd_folder(str(tmp_path / "SIDD"), np.random.default_rng(0))
    benchmarks.prepare("sidd", manual_dir=str(tmp_path / "SIDD"), data_dir=str(tmp_path / "tfds"))
    return noisy, gt, str(tmp_path / "tfds")


def test_eval_cli_end_to_end_on_sidd_layout(sidd, tmp_path, monkeypatch, capsys):
    """The whole program on a generated SIDD folder (prepared to ArrayRecord, read with tfds.data_source), with
    a stand-in model (brightens by 0.02) under the released SIDD model's name, so the published figure shows."""
    noisy, gt, data_dir = sidd
    monkeypatch.setattr(eval_cli, "model_name", lambda args: "maxim_s3_denoising_sidd")
    monkeypatch.setattr(eval_cli.cli, "load_weights", lambda *a, **k: NumpyRestorer(lambda x: x + 0.02))
    out = tmp_path / "out"
    argv = ["--weights", "w.npz", "--data", "tfds:sidd/validation", "--data-dir", data_dir, "--out", str(out),
            "--ensemble", "--tile", "16", "--overlap", "4"]
    assert eval_cli.main(argv) == 0
    printed = capsys.readouterr().out
    lines = (out / "per_image.csv").read_text().splitlines()
    assert lines[0] == "index,name,height,width,psnr,ssim" and len(lines) == 5
    expected = [metrics.psnr(gt[i] / 255.0, noisy[i] / 255.0 + 0.02) for i in range(4)]
    assert [line.split(",")[1] for line in lines[1:]] == ["00_00", "00_01", "01_00", "01_01"]
    np.testing.assert_allclose([float(line.split(",")[4]) for line in lines[1:]], expected, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["psnr"] == pytest.approx(np.mean(expected), abs=1e-5) and summary["count"] == 4  # float32 images
    assert summary["protocol"]["name"] == "sidd" and summary["ensemble"] is True and summary["tile"] == 16
    assert summary["published"]["psnr"] == 39.96
    assert f"PSNR {np.mean(expected):.2f} dB" in printed and "published: 39.96 dB, SSIM 0.960" in printed
    from PIL import Image

    with Image.open(out / "grid.png") as im:  # 2 worst + 2 best rows of input | output | target
        assert im.height >= 4 * 160 and im.width >= 3 * 160
    # an existing report is kept unless --overwrite
    assert eval_cli.main(argv) == 2
    assert "already holds files" in capsys.readouterr().err
    assert eval_cli.main(argv + ["--overwrite", "--limit", "1"]) == 0
    assert len((out / "per_image.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize("argv,match", [
    (["--data", "tfds:sidd"], r"must be <source>/<split>"),
    (["--data", "tfds:sidd/validation", "--protocol", "sid"], r"Did you mean 'sidd'"),
    (["--data", "tfds:sidd/validation", "--limit", "-1"], r"--limit must be >= 0"),
    (["--data", "tfds:sidd/validation", "--data-dir", "EMPTY"],
     r"Benchmark 'sidd' split 'validation' is not prepared in .*python -m flaxzoo.data.benchmarks sidd --manual-dir"),
])
def test_eval_cli_usage_errors(argv, match, tmp_path, capsys):
    argv = [str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    assert eval_cli.main(["--weights", "w.npz", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(match, err)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_eval_cli_with_tiny_maxim(sidd, tmp_path, capsys):
    """The real program with a real tiny MAXIM read from a weights file (weights shrunk so its output stays
    near its input: a random MAXIM's output is far outside [0, 1], which the evaluator refuses)."""
    import flaxzoo
    from flaxzoo.models.convert.common import save_params

    noisy, gt, data_dir = sidd
    model = flaxzoo.create_model("maxim_tiny")
    state = nnx.state(model, nnx.Param)
    nnx.update(model, __import__("jax").tree.map(lambda p: p * 0.05, state))
    save_params(model, tmp_path / "tiny.safetensors", model_name="maxim_tiny")
    out = tmp_path / "out"
    assert eval_cli.main(["--weights", str(tmp_path / "tiny.safetensors"), "--data", "tfds:sidd/validation",
                          "--data-dir", data_dir, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 4 and 10 < summary["psnr"] < 60 and summary["published"] is None
    assert "no published figure" in capsys.readouterr().out


# ----------------------------------------------------------------------------- classification, LM
class MeanColour(nnx.Module):
    """Logits = the image's mean per channel (3 classes): a solid red image is class 0."""

    def __call__(self, x):
        return x.mean(axis=(1, 2))


def test_classification_evaluator_pads_the_last_batch():
    colours = np.eye(3, dtype=np.uint8) * 255
    images = [np.broadcast_to(colours[c], (40, 50, 3)).copy() for c in (0, 1, 2, 0, 1)]
    source = [{"image": im, "label": np.int64(label)} for im, label in zip(images, (0, 1, 2, 0, 2))]
    result = classification.evaluate(MeanColour(), source, model_name="swin_test_tiny", batch_size=2)
    assert result["count"] == 5  # 5 = 2 + 2 + 1: the short batch is padded, not dropped
    assert result["top1"] == pytest.approx(4 / 5) and result["top5"] == 1.0
    assert result["per_class"][2] == {"count": 2, "accuracy": 0.5}
    assert result["confusions"] == [{"true": 2, "predicted": 1, "count": 1}]


class Uniform(nnx.Module):
    def __init__(self, vocab):
        self.vocab = vocab

    def __call__(self, tokens):
        return jnp.zeros((*tokens.shape, self.vocab))


def test_lm_evaluator_loss_perplexity_bits_per_byte():
    from flaxzoo.data.pipeline import make_dataset
    from flaxzoo.data.text import PackedBytes

    docs = [{"text": "hello world"}, {"text": "abc"}, {"text": "evaluation"}]
    ds = make_dataset(docs, preprocess="bytes_lm", global_batch=2, seed=0, train=False, seq_len=8)
    result = language.evaluate(Uniform(258), ds, batch_size=2)
    windows = [PackedBytes(docs, seq_len=8)[i] for i in range(3)]
    predicted = [w["tokens"][1:][w["mask"][1:] > 0] for w in windows]
    tokens = sum(len(p) for p in predicted)
    byte_count = sum(int((p < 256).sum()) for p in predicted)
    assert result["tokens"] == tokens
    assert result["loss"] == pytest.approx(math.log(258), rel=1e-6)
    assert result["perplexity"] == pytest.approx(258, rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(math.log2(258) * tokens / byte_count, rel=1e-6)


def test_training_tasks_use_the_evaluators_metrics():
    from flaxzoo.train.tasks import restore

    rng = np.random.default_rng(0)
    target = rng.random((2, 16, 16, 3)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(restore.example_psnr(jnp.asarray(pred), jnp.asarray(target))),
                               [metrics.psnr(target[i], pred[i]) for i in range(2)], rtol=1e-5)


class MeanColourTen(nnx.Module):
    """10 logits: the image mean in class 0, zeros elsewhere (ties count against: class 0 wins if mean > 0)."""

    def __call__(self, x):
        m = x.mean(axis=(1, 2, 3))
        return jnp.zeros((x.shape[0], 10)).at[:, 0].set(m)


def test_eval_cli_classification_and_lm(tmp_path, monkeypatch, capsys):
    from flaxzoo.data.pipeline import make_source

    monkeypatch.setattr(eval_cli, "model_name", lambda args: "swin_test_tiny")
    monkeypatch.setattr(eval_cli.cli, "load_weights", lambda *a, **k: MeanColourTen())
    out = tmp_path / "cls"
    assert eval_cli.main(["--weights", "w", "--data", "offline:textures/test", "--out", str(out), "--limit", "21",
                          "--batch-size", "8"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    source = make_source("offline:textures", "test")
    labels = np.array([source[i]["label"] for i in range(21)])
    # by hand: class 0 scores the preprocessed image's mean, the 9 others 0 (ties count against), so an image is
    # a top-1 hit iff its label is 0 and its mean is > 0
    import flaxzoo.data

    transform = flaxzoo.data.create_transform("swin_test_tiny")  # the model's eval protocol (crop_pct 0.9, 64)
    means = np.array([transform(source[i]["image"]).mean() for i in range(21)])
    assert summary["count"] == 21 and summary["top1"] == pytest.approx(np.mean((labels == 0) & (means > 0)))
    assert summary["task"] == "classify" and summary["published"] is None
    assert len((out / "per_class.csv").read_text().splitlines()) == 1 + len(set(labels.tolist()))
    assert "top-1" in capsys.readouterr().out

    vocab = len(make_source("offline:pydoc", "test").vocab)
    monkeypatch.setattr(eval_cli, "model_name", lambda args: "uoe_lm_tiny")
    monkeypatch.setattr(eval_cli.cli, "load_weights", lambda *a, **k: Uniform(vocab))
    out = tmp_path / "lm"
    assert eval_cli.main(["--weights", "w", "--data", "offline:pydoc/test", "--out", str(out), "--limit", "2",
                          "--batch-size", "4"]) == 0  # the task from the preset: lm
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tokens"] == 2 * 4 * 128 and summary["loss"] == pytest.approx(math.log(vocab), rel=1e-6)
    assert "bits_per_byte" not in summary  # character vocabulary: no bytes to count


def test_eval_cli_help_runs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert eval_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--protocol" in out and "--ensemble" in out and "--debug" in out and not os.listdir(tmp_path)
