"""Input pipelines: offline real images, TFDS (mock, no network, no TensorFlow), grain resume."""
import numpy as np
import pytest

from flaxzoo.data.offline import DenoiseCrops, TexturePatches
from flaxzoo.data.pipeline import make_dataset, make_source


def test_texture_patches_are_real_and_split_by_region():
    train, test = TexturePatches("train", per_image=8), TexturePatches("test", per_image=8)
    assert len(train) == 80 and len(test) == 20 and train.num_classes == 10
    ex = train[0]
    assert ex["image"].shape == (32, 32, 1) and ex["image"].dtype == np.uint8 and ex["image"].std() > 0
    assert {int(test[i]["label"]) for i in range(len(test))} == set(range(10))
    again = TexturePatches("train", per_image=8)
    np.testing.assert_array_equal(again[5]["image"], train[5]["image"])  # deterministic


def test_denoise_pipeline_adds_noise_of_the_requested_level():
    src = DenoiseCrops("train", patch=32, num=16)
    batch = next(iter(make_dataset(src, preprocess="denoise", global_batch=8, seed=0, train=True, sigma=25.0)))
    assert batch["input"].shape == batch["target"].shape == (8, 32, 32, 3)
    noise = batch["input"] - batch["target"]
    assert abs(noise.std() - 25 / 255) < 0.01
    assert 0 <= batch["target"].min() and batch["target"].max() <= 1


def test_iterator_state_resumes_the_same_batches():
    src = make_source("offline:textures", "train", per_image=4)
    it = iter(make_dataset(src, preprocess="classify", global_batch=4, seed=3, train=True).to_iter_dataset())
    next(it)
    state = it.get_state()
    expected = [next(it)["image"] for _ in range(3)]
    it.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(next(it)["image"], want)


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        src = make_source("tfds:cifar10", "train")
        batch = next(iter(make_dataset(src, preprocess="classify", global_batch=4, seed=0, train=True)))
    assert batch["image"].shape == (4, 32, 32, 3) and batch["label"].dtype == np.int32


def test_bad_dataset_names_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="offline:textures"):
        make_source("textures", "train")
    with pytest.raises(ValueError, match="Unknown offline dataset"):
        make_source("offline:imagenet", "train")
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="Prepare it first"):
        make_source("tfds:cifar10", "train", data_dir=str(tmp_path))


def test_pydoc_windows_split_by_topic():
    from flaxzoo.data.text import PydocWindows

    train, test = PydocWindows("train", seq_len=64), PydocWindows("test", seq_len=64)
    assert len(train) > 5000 and len(test) > 300
    window = train[3]["tokens"]
    assert window.shape == (65,) and window.dtype == np.int32 and window.max() < len(train.vocab)
    assert train.vocab.decode(train[0]["tokens"][:10]) == train.vocab.decode(train.ids[:10])
    # no test window appears in the training text
    probe = test.vocab.decode(test[len(test) // 2]["tokens"])
    assert probe not in train.vocab.decode(train.ids)
