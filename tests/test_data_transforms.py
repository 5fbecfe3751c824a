"""Classification transforms: create_transform, crops, RandAugment, random erasing, Mixup/CutMix."""
import numpy as np
import pytest
from PIL import Image

from flaxzoo.data import create_transform, image_ops
from flaxzoo.data.erasing import random_erase
from flaxzoo.data.mixup import mix_batch
from flaxzoo.data.randaugment import INCREASING_OPS, OPS, RandAugment, parse_policy


def photo(h=60, w=90, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_eval_transform_follows_the_model_spec_resize_then_centre_crop():
    t = create_transform("swin_tiny_patch4_window7_224")
    assert (t.height, t.width, t.crop_pct, t.interpolation) == (224, 224, 0.9, "bicubic")
    img = photo(300, 400)
    out = t(img)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    # by hand: shorter side to floor(224 / 0.9) = 248 (aspect kept), centre 224 crop, normalise
    resized = np.asarray(Image.fromarray(img).resize((int(248 * 400 / 300), 248), Image.BICUBIC))
    top, left = int(round((248 - 224) / 2)), int(round((resized.shape[1] - 224) / 2))
    want = (resized[top:top + 224, left:left + 224] / 255.0 - t.mean) / t.std
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_create_transform_takes_cfg_dicts_pil_and_float_images():
    cfg = {"input_size": (3, 32, 48), "crop_pct": 1.0, "interpolation": "bilinear", "mean": (0.5,) * 3,
           "std": (0.5,) * 3, "url": "ignored"}  # a timm pretrained_cfg, (C, H, W)
    t = create_transform(cfg)
    img = photo(64, 96)
    a, b = t(img), t(Image.fromarray(img))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 48, 3)
    c = t(img.astype(np.float32) / 255.0)  # float input resized in PIL's float mode: the same up to rounding
    np.testing.assert_allclose(c, a, atol=0.02)
    gray = t(img[..., 0])  # grayscale -> 3 channels
    assert gray.shape == (32, 48, 3) and np.allclose(gray[..., 0], gray[..., 1])
    with pytest.raises(TypeError, match="Unknown transform setting"):
        create_transform(cfg, crop_pcnt=0.9)
    with pytest.raises(ValueError, match="no image classification preprocessing"):
        create_transform("maxim_s3")
    with pytest.raises(ValueError, match="interpolation"):
        create_transform(cfg, interpolation="cubic")


def test_train_transform_is_deterministic_in_the_generator_and_varies_with_it():
    t = create_transform("swin_test_tiny", train=True, auto_augment="rand-m9-mstd0.5", re_prob=0.5)
    img = photo()
    a = t(img, np.random.default_rng([0, 5]))
    b = t(img, np.random.default_rng([0, 5]))
    c = t(img, np.random.default_rng([0, 6]))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (64, 64, 3) and a.dtype == np.float32 and not np.array_equal(a, c)
    t.re_prob = 0.0  # without the N(0, 1) erasing fill, values stay within the normalised [0, 1] range
    d = t(img, np.random.default_rng(7))
    assert np.all(d >= (0 - t.mean) / t.std - 1e-6) and np.all(d <= (1 - t.mean) / t.std + 1e-6)


def test_random_resized_crop_box_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = image_ops.random_resized_crop_box(100, 150, rng, scale=(0.2, 0.5), ratio=(0.75, 1.33))
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 150
        assert 0.18 <= h * w / 15000 <= 0.52 and 0.7 <= w / h <= 1.4


def test_randaugment_policy_parsing_and_every_op_runs():
    cfg = parse_policy("rand-m9-mstd0.5-inc1")
    assert cfg["magnitude"] == 9 and cfg["magnitude_std"] == 0.5 and cfg["increasing"] and cfg["num_ops"] == 2
    with pytest.raises(ValueError, match="Unknown RandAugment setting"):
        parse_policy("rand-m9-x3")
    with pytest.raises(ValueError, match="Only RandAugment"):
        parse_policy("v0")
    img = Image.fromarray(photo(32, 32))
    for name, op in {**OPS, **INCREASING_OPS}.items():
        out = np.asarray(op(img, 9.0, np.random.default_rng(0), (124, 116, 104)))
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8, name
    ra = RandAugment("rand-m9-mstd0.5-p1.0")
    x = photo(32, 32)
    outs = [ra(x, np.random.default_rng(i)) for i in range(6)]
    assert sum(not np.array_equal(o, x) for o in outs) >= 5  # p=1: two ops always applied
    np.testing.assert_array_equal(ra(x, np.random.default_rng(3)), outs[3])
    assert ra(x[..., :1], np.random.default_rng(0)).shape == (32, 32, 1)  # grayscale


def test_random_erasing_erases_one_box_with_noise():
    img = np.zeros((40, 40, 3), np.float32)
    out = random_erase(img, np.random.default_rng(1), prob=1.0)
    erased = np.any(out != 0, axis=-1)
    rows, cols = np.where(erased)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert erased.sum() == box  # one rectangle, filled everywhere
    assert 0.02 * 1600 * 0.8 <= box <= 1600 / 3 * 1.2
    assert abs(out[erased].std() - 1.0) < 0.2
    np.testing.assert_array_equal(random_erase(img, np.random.default_rng(1), prob=0.0), img)


def two_tone_batch(b=4, c=5):
    """Image i is constant i (so the partner of image i, B-1-i, is constant B-1-i), label i."""
    images = np.stack([np.full((16, 16, 3), float(i), np.float32) for i in range(b)])
    return {"image": images, "label": np.arange(b, dtype=np.int64)}, c


def test_mixup_mixes_labels_by_the_same_lambda_as_pixels():
    batch, c = two_tone_batch()
    out = mix_batch(batch, np.random.default_rng(0), num_classes=c, mixup_alpha=0.8)
    lam = out["label"][0, 0]
    assert 0 < lam < 1 and out["label"].shape == (4, c)
    np.testing.assert_allclose(out["label"].sum(1), 1.0, rtol=1e-6)
    for i in range(4):  # pixels = lam * i + (1 - lam) * (3 - i), labels the same weights
        np.testing.assert_allclose(out["image"][i], lam * i + (1 - lam) * (3 - i), rtol=1e-5)
        if i != 3 - i:
            assert out["label"][i, i] == pytest.approx(lam) and out["label"][i, 3 - i] == pytest.approx(1 - lam)


def test_cutmix_label_weights_are_the_pasted_area():
    batch, c = two_tone_batch()
    for seed in range(5):
        out = mix_batch(batch, np.random.default_rng(seed), num_classes=c, cutmix_alpha=1.0)
        pasted = (out["image"][0, ..., 0] == 3).mean()  # image 0 receives pixels of image 3
        assert out["label"][0, 3] == pytest.approx(pasted, abs=1e-6)
        assert out["label"][0, 0] == pytest.approx(1 - pasted, abs=1e-6)


def test_mixup_switch_and_prob_and_bad_labels():
    batch, c = two_tone_batch()
    kinds = set()
    for seed in range(20):
        out = mix_batch(batch, np.random.default_rng(seed), num_classes=c, mixup_alpha=0.8, cutmix_alpha=1.0)
        values = np.unique(out["image"][0])
        kinds.add("cutmix" if set(values) <= {0.0, 3.0} else "mixup")
    assert kinds == {"cutmix", "mixup"}
    off = mix_batch(batch, np.random.default_rng(0), num_classes=c, mixup_alpha=0.8, prob=0.0)
    np.testing.assert_array_equal(off["image"], batch["image"])
    np.testing.assert_array_equal(off["label"], np.eye(c)[:4])
    with pytest.raises(ValueError, match="num_classes=3"):
        mix_batch(batch, np.random.default_rng(0), num_classes=3, mixup_alpha=0.8)


def test_encoded_images_are_decoded():
    import io

    from flaxzoo.data.transforms import decode_image

    img = photo(20, 30)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue()), img)
    np.testing.assert_array_equal(decode_image(img), img)
