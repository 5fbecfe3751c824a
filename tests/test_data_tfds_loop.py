"""TFDS image sets through the training loop itself, under `tfds.testing.mock_data` (no TensorFlow, no network).

mock_data gives decoded uint8 images of random sizes for imagenet2012 (the variable-size decode path) and
32x32 ones for cifar10; the loop builds the sources, the augmented training stream with Mixup/CutMix, the
eval stream, the soft-target classification loss, checkpoints and the final weights.
"""
import json

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")


pytestmark = pytest.mark.usefixtures("fast_compile")  # tests/conftest.py


def mock_config(dataset: str, eval_split: str, num_classes: int):
    from flaxzoo.train.defaults import base_config

    c = base_config()
    c.model.name = "swin_test_tiny"
    c.model.kwargs.update(dict(num_classes=num_classes, img_size=32, embed_dim=8, depths=(1,), num_heads=(1,)))
    c.task.name = "classify"
    c.task.kwargs.label_smoothing = 0.1
    c.data.train = c.data.eval = f"tfds:{dataset}"
    c.data.eval_split = eval_split
    c.data.preprocess = "image_classification"
    c.data.pp.update(dict(model="swin_test_tiny", input_size=32, auto_augment="rand-m9-mstd0.5", re_prob=0.25,
                          mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=num_classes))
    c.batch_size = 8
    c.total_steps = 2
    c.log_every = 1
    c.eval_every = 2
    c.eval_batches = 1
    c.checkpoint_every = 2
    return c


@pytest.mark.parametrize("dataset,eval_split,num_classes", [("imagenet2012", "validation", 1000),
                                                            # another builder, same path: full suite
                                                            pytest.param("cifar10", "test", 10,
                                                                         marks=pytest.mark.slow)])
def test_mock_tfds_dataset_trains_through_the_loop(tmp_path, dataset, eval_split, num_classes):
    from flaxzoo.train.loop import train

    with tfds.testing.mock_data(num_examples=16):
        state = train(mock_config(dataset, eval_split, num_classes), str(tmp_path))
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [m["train/loss"] for m in metrics if "train/loss" in m]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any("eval/accuracy" in m for m in metrics)
    assert int(state.step) == 2 and (tmp_path / "model.safetensors").exists()


def test_augmented_tfds_batches_are_a_function_of_the_seed():
    from flaxzoo.data.pipeline import make_dataset, make_source

    pp = mock_config("imagenet2012", "validation", 1000).data.pp.to_dict()
    with tfds.testing.mock_data(num_examples=16):
        src = make_source("tfds:imagenet2012", "train")
        a, b, c = (make_dataset(src, preprocess="image_classification", global_batch=4, seed=s, train=True, **pp)
                   for s in (0, 0, 1))
        for i in (0, 3):
            np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
            np.testing.assert_array_equal(a[i]["label"], b[i]["label"])
        assert not np.array_equal(a[0]["image"], c[0]["image"])
        assert a[0]["image"].shape == (4, 32, 32, 3) and a[0]["label"].shape == (4, 1000)
