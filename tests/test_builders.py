"""Every benchmark builder on a tiny generated folder in exactly its documented layout: prepared to
ArrayRecord, read back through make_source("tfds:...") (tfds.data_source), pixels and pairing checked;
and the missing / incomplete folder errors (layout and download page in the message)."""
import os

import numpy as np
import pytest
from PIL import Image

from flaxzoo.data import benchmarks
from flaxzoo.data.pipeline import make_source

RNG = np.random.default_rng(0)


def _png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)


def _pair(root, input_rel, target_rel, size=(64, 64)):
    """Write a random input and target; returns (input, target) arrays."""
    x = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
    y = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
    _png(os.path.join(root, input_rel), x)
    if target_rel is not None:
        _png(os.path.join(root, target_rel), y)
    return x, y


def _sidd(root):
    from scipy.io import savemat

    noisy = RNG.integers(0, 256, (2, 2, 32, 32, 3), dtype=np.uint8)
    gt = RNG.integers(0, 256, (2, 2, 32, 32, 3), dtype=np.uint8)
    os.makedirs(root)
    savemat(os.path.join(root, "ValidationNoisyBlocksSrgb.mat"), {"ValidationNoisyBlocksSrgb": noisy})
    savemat(os.path.join(root, "ValidationGtBlocksSrgb.mat"), {"ValidationGtBlocksSrgb": gt})
    savemat(os.path.join(root, "BenchmarkNoisyBlocksSrgb.mat"), {"BenchmarkNoisyBlocksSrgb": gt[:1]})
    return {"validation": {f"{i:02d}_{j:02d}": (noisy[i, j], gt[i, j]) for i in range(2) for j in range(2)},
            "benchmark": {f"00_{j:02d}": (gt[0, j], None) for j in range(2)}}


def _dnd(root):
    from scipy.io import savemat

    pngs = {n: _pair(root, f"images_srgb/{n}.png", None)[:1] + (None,) for n in ("0001", "0002")}
    noisy = RNG.random((64, 64, 3)).astype(np.float32)  # the .mat form: InoisySRGB, float in [0, 1]
    savemat(os.path.join(root, "images_srgb/0003.mat"), {"InoisySRGB": noisy})
    return {"benchmark": {**pngs, "0003": (np.round(noisy * 255).astype(np.uint8), None)}}


def _gopro(root):
    out = {}
    for scene in ("GOPR0384_11_00", "GOPR0385_11_01"):
        _pair(root, f"test/{scene}/blur_gamma/000001.png", None)  # ignored by the builder
        out[f"{scene}/000001"] = _pair(root, f"test/{scene}/blur/000001.png", f"test/{scene}/sharp/000001.png")
    return {"test": out}


def _hide(root):
    return {"test": {"test-close-ups/1fromGOPR0950": _pair(root, "test/test-close-ups/1fromGOPR0950.png",
                                                           "GT/1fromGOPR0950.png"),
                     "test-long-shot/9fromGOPR1062": _pair(root, "test/test-long-shot/9fromGOPR1062.png",
                                                           "GT/9fromGOPR1062.png")}}


def _realblur(root):
    out = {}
    for cam, folder in (("J", "RealBlur-J_ECC_IMCORR_centroid_itensity_ref"),
                        ("R", "RealBlur-R_BM3D_ECC_IMCORR_centroid_itensity_ref")):
        lines, items = [], {}
        for scene in ("scene230", "scene231"):
            gt, blur = f"{folder}/{scene}/gt/gt_1.png", f"{folder}/{scene}/blur/blur_1.png"
            items[f"{scene}/blur_1"] = _pair(root, blur, gt)
            lines.append(f"{gt} {blur}")
        with open(os.path.join(root, f"RealBlur_{cam}_test_list.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        out[f"{cam.lower()}_test"] = items
    return out


def _rain13k(root):
    return {s.lower(): {"1": _pair(root, f"test/{s}/input/1.png", f"test/{s}/target/1.png"),
                        "2": _pair(root, f"test/{s}/input/2.png", f"test/{s}/target/2.png")}
            for s in ("Rain100H", "Rain100L", "Test100", "Test1200", "Test2800")}


def _raindrop(root):
    return {"test_a": {f"{n}_rain": _pair(root, f"test_a/data/{n}_rain.png", f"test_a/gt/{n}_clean.png")
                       for n in (0, 1)}}


def _sots(root):
    indoor = {f"1400_{k}": (x, None) for k in (1, 2) for x in [None]}
    gt = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    _png(os.path.join(root, "indoor/gt/1400.png"), gt)
    for k in (1, 2):
        hazy = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        _png(os.path.join(root, f"indoor/hazy/1400_{k}.png"), hazy)
        indoor[f"1400_{k}"] = (hazy, gt)
    x, y = _pair(root, "outdoor/hazy/0001_0.8_0.2.png", "outdoor/gt/0001.png")
    return {"indoor": indoor, "outdoor": {"0001_0.8_0.2": (x, y)}}


def _lol(root):
    return {"test": {n: _pair(root, f"eval15/low/{n}.png", f"eval15/high/{n}.png") for n in ("1", "22")}}


def _fivek(root):
    return {"test": {n: _pair(root, f"test/input/{n}.png", f"test/target/{n}.png") for n in ("a0001", "a0002")}}


LAYOUTS = {"sidd": _sidd, "dnd": _dnd, "gopro": _gopro, "hide": _hide, "realblur": _realblur,
           "rain13k": _rain13k, "raindrop": _raindrop, "sots": _sots, "lol": _lol, "fivek": _fivek}


def test_every_builder_has_a_layout_test():
    assert set(LAYOUTS) == set(benchmarks.BUILDERS)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_builder_reads_its_layout(tmp_path, name):
    expected = LAYOUTS[name](str(tmp_path / "manual"))
    data_dir = str(tmp_path / "tfds")
    benchmarks.prepare(name, manual_dir=str(tmp_path / "manual"), data_dir=data_dir)
    assert any(f.endswith(".array_record-00000-of-00001") for _, _, fs in os.walk(data_dir) for f in fs)
    for split, pairs in expected.items():
        source = make_source(f"tfds:{name}", split, data_dir=data_dir)
        assert len(source) == len(pairs)
        names = [source[i]["name"].decode() for i in range(len(source))]
        assert names == sorted(pairs)  # the dataset's own (sorted file) order, not shuffled
        for i, n in enumerate(names):
            x, y = pairs[n]
            example = source[i]
            np.testing.assert_array_equal(example["input"], x)
            if y is None:  # private ground truth: no target (DND), or an empty one (SIDD benchmark)
                assert "target" not in example or example["target"].shape == (0, 0, 3)
            else:
                np.testing.assert_array_equal(example["target"], y)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_builder_missing_folder_says_layout_and_download_page(tmp_path, name):
    cls = benchmarks.BUILDERS[name]
    with pytest.raises(benchmarks.BenchmarkLayoutError, match="does not exist") as e:
        benchmarks.prepare(name, manual_dir=str(tmp_path / "nowhere"), data_dir=str(tmp_path / "tfds"))
    assert cls.HOMEPAGE.split()[0] in str(e.value) and "Expected layout" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(benchmarks.BenchmarkLayoutError, match=f"{name}: .*manual_dir"):
        benchmarks.prepare(name, manual_dir=str(tmp_path / "empty"), data_dir=str(tmp_path / "tfds"))
    assert cls.HOMEPAGE.split()[0] in (cls.__doc__ or "") + benchmarks.describe(name)


def test_incomplete_folder_names_the_missing_target(tmp_path):
    root = str(tmp_path / "m")
    _lol(root)
    os.remove(os.path.join(root, "eval15/high/22.png"))
    with pytest.raises(benchmarks.BenchmarkLayoutError, match=r"1 of 2 images in eval15/low/ have no target in "
                                                              r"eval15/high/ \(first: 22.png\)"):
        benchmarks.prepare("lol", manual_dir=root, data_dir=str(tmp_path / "tfds"))


def test_sidd_v73_mat_is_refused_with_a_clear_message(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    for f in ("ValidationNoisyBlocksSrgb.mat", "ValidationGtBlocksSrgb.mat"):
        (root / f).write_bytes(header.ljust(512, b" "))
    with pytest.raises(benchmarks.BenchmarkLayoutError, match=r"v7.3 \(HDF5\).*does not read"):
        benchmarks.prepare("sidd", manual_dir=str(root), data_dir=str(tmp_path / "tfds"))
