"""Restoration pairs, degradations, byte-level text packing, ListOps, and the pipeline's determinism."""
import numpy as np
import pytest

from flaxzoo.data import degradations, restoration, transforms
from flaxzoo.data.pipeline import make_dataset, make_source
from flaxzoo.data.text import ByteTokenizer, PackedBytes, PydocWindows


class ListSource:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def clean_images(n=6, h=40, w=48):
    rng = np.random.default_rng(0)
    return [{"image": rng.integers(0, 256, (h + 8 * (i % 2), w, 3), dtype=np.uint8)} for i in range(n)]


def test_paired_crops_and_rotations_are_the_same_for_input_and_target():
    rng = np.random.default_rng(0)
    target = rng.random((30, 40, 3)).astype(np.float32)
    fn = transforms.get("paired", train=True, patch=16)
    seen = set()
    for i in range(12):
        out = fn({"input": target * 0.5, "target": target}, np.random.default_rng(i))
        assert out["input"].shape == out["target"].shape == (16, 16, 3)
        np.testing.assert_allclose(out["input"], out["target"] * 0.5)  # the same window, flip and rotation
        assert out["target"].dtype == np.float32 and 0 <= out["target"].min() and out["target"].max() <= 1
        seen.add(out["target"].tobytes())
    assert len(seen) == 12
    with pytest.raises(ValueError, match="smaller than the training patch"):
        transforms.get("paired", train=True, patch=64)({"input": target, "target": target}, rng)


def test_dihedral_covers_the_eight_symmetries():
    x = np.arange(9, dtype=np.float32).reshape(3, 3, 1)
    outs = {restoration.dihedral([x], np.random.default_rng(i))[0].tobytes() for i in range(80)}
    assert len(outs) == 8


def test_eval_pairs_are_full_images_or_padded_to_a_canvas_with_a_mask():
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    full = transforms.get("paired", train=False, patch=16)({"input": img, "target": img}, None)
    assert full["target"].shape == (20, 30, 3) and "pixel_mask" not in full
    out = transforms.get("paired", train=False, eval_size=(32, 48))({"input": img, "target": img}, None)
    assert out["input"].shape == out["target"].shape == (32, 48, 3) and out["pixel_mask"].shape == (32, 48, 1)
    assert out["pixel_mask"].sum() == 20 * 30 and out["pixel_mask"][:20, :30].min() == 1
    np.testing.assert_array_equal(out["target"][:20, :30], img)
    with pytest.raises(ValueError, match="larger than data.pp.eval_size"):
        transforms.get("paired", train=False, eval_size=16)({"input": img, "target": img}, None)


def test_gaussian_noise_is_per_example_and_at_the_requested_sigma():
    src = ListSource(clean_images())
    ds = make_dataset(src, preprocess="degrade", global_batch=2, seed=0, train=True, sigma=25.0, patch=32)
    b = ds[0]
    noise = b["input"] - b["target"]
    assert abs(noise.std() - 25 / 255) < 0.01
    assert not np.allclose(noise[0], noise[1])  # not one noise field for all
    again = make_dataset(src, preprocess="degrade", global_batch=2, seed=0, train=True, sigma=25.0, patch=32)[0]
    np.testing.assert_array_equal(again["input"], b["input"])  # deterministic in (seed, index)
    # eval: full images (of different sizes, so batch 1) with their own noise, fixed per example
    ev = make_dataset(src, preprocess="degrade", global_batch=1, seed=0, train=False, sigma=25.0)
    e0, e1 = ev[0], ev[1]
    assert e0["input"].shape == (1, 40, 48, 3) and e1["input"].shape == (1, 48, 48, 3)
    np.testing.assert_array_equal(ev[0]["input"], e0["input"])
    n0, n1 = (e0["input"] - e0["target"])[0, :40], (e1["input"] - e1["target"])[0, :40]
    assert not np.allclose(n0, n1)
    with pytest.raises(ValueError, match="differ in shape"):
        make_dataset(src, preprocess="degrade", global_batch=2, seed=0, train=False, sigma=25.0)[0]


def test_blurs_keep_constant_images_and_spread_a_point():
    flat = np.full((24, 24, 1), 0.3, np.float32)
    np.testing.assert_allclose(degradations.convolve(flat, degradations.gaussian_kernel(2.0)), flat, atol=1e-6)
    point = np.zeros((31, 31, 1), np.float32)
    point[15, 15] = 1.0
    k = degradations.gaussian_kernel(1.5)
    out = degradations.convolve(point, k)
    r = k.shape[0] // 2
    np.testing.assert_allclose(out[15 - r:15 + r + 1, 15 - r:15 + r + 1, 0], k, atol=1e-6)
    line = degradations.convolve(point, degradations.motion_kernel(9, 0.0))[..., 0]
    assert np.count_nonzero(line[15] > 1e-6) == 9 and np.allclose(line.sum(), 1.0, atol=1e-5)
    a = degradations.degrade(point, np.random.default_rng(1), motion_length=(5, 11))
    b = degradations.degrade(point, np.random.default_rng(2), motion_length=(5, 11))
    assert not np.allclose(a, b)  # per-example length and angle
    with pytest.raises(ValueError, match="at least one"):
        transforms.get("degrade", train=True)


def test_byte_tokenizer_and_packing_into_fixed_windows():
    tok = ByteTokenizer()
    assert tok.decode(tok.encode("héllo")) == "héllo" and len(tok.encode("é")) == 2 and len(tok) == 258
    docs = ListSource([{"text": t} for t in ("ab", "cde", b"f", "ghij")])
    packed = PackedBytes(docs, seq_len=5)
    assert len(packed) == 4
    w0 = packed[0]["tokens"]
    assert w0.tolist() == [97, 98, 256, 99, 100, 101]  # "ab" EOS "cde": windows cross documents
    last = packed[3]
    assert last["tokens"].tolist() == [103, 104, 105, 106, 256, 257] and last["mask"].tolist() == [1] * 5 + [0]
    ds = make_dataset(docs, preprocess="bytes_lm", global_batch=2, seed=0, train=False, seq_len=5, stride=2)
    assert len(ds) == 1 and ds[0]["tokens"].shape == (2, 6) and ds[0]["mask"].dtype == np.int32
    with pytest.raises(KeyError, match="text_key"):
        PackedBytes(ListSource([{"content": "x"}]), seq_len=4)[0]


def test_pydoc_is_available_byte_level():
    src = make_source("offline:pydoc", "test", seq_len=32, tokenizer="byte")
    ex = src[0]["tokens"]
    assert ex.shape == (33,) and ex.max() < 256 and src.vocab.decode(ex)


def test_tfds_text_set_through_the_pipeline():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        src = make_source("tfds:lm1b", "train")
        b = make_dataset(src, preprocess="bytes_lm", global_batch=4, seed=0, train=True, seq_len=16)[0]
    assert b["tokens"].shape == (4, 17) and b["tokens"].max() <= ByteTokenizer.PAD


def test_listops_files(tmp_path):
    (tmp_path / "basic_train.tsv").write_text("Source\tTarget\n( ( [MAX 2 9 ) 4 ] )\t9\n[MIN 3 ( [SM 1 2 ] ) ]\t3\n")
    src = make_source("lra:listops", "train", data_dir=str(tmp_path), max_len=8)
    ex = src[0]
    assert ex["tokens"].tolist() == [2, 8, 15, 10, 5, 0, 0, 0] and ex["label"] == 9 and ex["token_mask"].sum() == 5
    assert src.num_truncated == 0 and len(src) == 2
    with pytest.raises(FileNotFoundError, match="listops-1000"):
        make_source("lra:listops", "test", data_dir=str(tmp_path))


def test_unknown_pp_keys_are_errors():
    with pytest.raises(ValueError, match=r"Unknown data.pp key\(s\) \['sigmaa'\]"):
        transforms.get("degrade", train=True, sigmaa=3)
    with pytest.raises(ValueError, match="num_classes"):
        make_dataset(ListSource([]), preprocess="image_classification", global_batch=2, seed=0, train=True,
                     mixup_alpha=0.8)


def test_paired_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for d in ("input", "target"):
        (tmp_path / "train" / d).mkdir(parents=True)
    for name, h in (("a.png", 20), ("b.png", 24)):
        clean = rng.integers(0, 256, (h, 30, 3), dtype=np.uint8)
        Image.fromarray(clean).save(tmp_path / "train" / "target" / name)
        Image.fromarray(255 - clean).save(tmp_path / "train" / "input" / name)
    src = make_source("folder:pairs", "train", data_dir=str(tmp_path))
    ex = src[1]
    assert len(src) == 2 and ex["target"].shape == (24, 30, 3)
    np.testing.assert_array_equal(ex["input"], 255 - ex["target"])
    b = make_dataset(src, preprocess="paired", global_batch=2, seed=0, train=True, patch=16)[0]
    assert b["input"].shape == (2, 16, 16, 3)
    (tmp_path / "train" / "input" / "b.png").rename(tmp_path / "train" / "input" / "c.png")
    with pytest.raises(ValueError, match="same file names"):
        make_source("folder:pairs", "train", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="data.data_dir"):
        make_source("folder:pairs", "val", data_dir=str(tmp_path))
