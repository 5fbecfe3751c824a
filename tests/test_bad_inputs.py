"""A catalogue of bad inputs, one test per case: each must raise our own error whose message names the
problem (matched on its key words), before jax/numpy internals; plus the good inputs next to them.

Classes: model inputs (rank, dtype, channels, zero and minimum sizes, token ids, masks), metrics
(shapes, dtypes and ranges, crops, the SSIM window, NaN), restore_image arguments (tile, overlap,
batch_size, clip, the image) and weight files (empty, truncated, directory, wrong format, pickles).
Model checks run at trace time, so the model cases use jax.eval_shape: nothing is compiled.
"""
import pickle
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.eval import metrics as eval_metrics
from flaxzoo.eval.restore import Restorer, restore_image, tile_starts
from flaxzoo.models.convert.common import (WeightsFileError, check_weights_file, read_safetensors_metadata,
                                          read_state_dict)
from flaxzoo.validate import InputError, check_finite, check_positive_int

F32, U8 = jnp.float32, jnp.uint8


# ----------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def models():
    return {
        "swin": flaxzoo.create_model("swin_test_tiny"),
        "swinv2": flaxzoo.create_model("swinv2_test_tiny"),
        "swin_uoe": flaxzoo.create_model("swin_uoe_test_tiny"),
        "maxim": flaxzoo.create_model("maxim_tiny"),  # size multiple 16
        "vit": flaxzoo.create_model("uoe_vit_test_tiny"),  # 32x32 only
        "lm": flaxzoo.create_model("uoe_lm_tiny"),  # vocab 128
        "lra": flaxzoo.create_model("uoe_lra_listops", vocab_size=20, max_seq_len=16, depth=1),
    }


def _trace(model, method: str, *args):
    """Trace model.method(*args) abstractly (no compile); args may be jax.ShapeDtypeStruct."""
    graphdef, state = nnx.split(model)

    def run(state, *xs):
        return getattr(nnx.merge(graphdef, state), method)(*xs)

    return jax.eval_shape(run, state, *args)


def _s(shape, dtype=F32):
    return jax.ShapeDtypeStruct(shape, dtype)


MODEL_CASES = [
    # (id, model, method, args, message key words)
    ("swin-rank3", "swin", "__call__", [_s((64, 64, 3))], r"rank 4.*x\[None\]"),
    ("swin-rank5", "swin", "__call__", [_s((1, 1, 64, 64, 3))], r"rank 4"),
    ("swin-nchw", "swin", "__call__", [_s((1, 3, 64, 64))], r"3 channels.*NCHW.*transpose"),
    ("swin-1-channel", "swin", "__call__", [_s((1, 64, 64, 1))], r"3 channels.*got 1"),
    ("swin-uint8", "swin", "__call__", [_s((1, 64, 64, 3), U8)], r"floating.*uint8.*astype\(np.float32\) / 255"),
    ("swin-int32", "swin", "__call__", [_s((1, 64, 64, 3), jnp.int32)], r"floating.*int32"),
    ("swin-bool", "swin", "__call__", [_s((1, 64, 64, 3), jnp.bool_)], r"floating.*bool"),
    ("swin-zero-height", "swin", "__call__", [_s((1, 0, 8, 3))], r"empty axis"),
    ("swin-zero-batch", "swin", "__call__", [_s((0, 8, 8, 3))], r"empty axis"),
    ("swin-features-channels", "swin", "features", [_s((1, 64, 64, 4))], r"3 channels.*got 4"),
    ("swin-forward-features-rank", "swin", "forward_features", [_s((64, 64))], r"rank 4"),
    ("swinv2-uint8", "swinv2", "__call__", [_s((2, 32, 32, 3), U8)], r"floating.*astype"),
    ("swinv2-zero-width", "swinv2", "features", [_s((1, 8, 0, 3))], r"empty axis"),
    ("swin-uoe-zero-batch", "swin_uoe", "__call__", [_s((0, 8, 8, 3))], r"empty axis"),
    ("swin-uoe-channels", "swin_uoe", "__call__", [_s((1, 8, 8, 2))], r"3 channels"),
    ("maxim-not-multiple", "maxim", "__call__", [_s((1, 40, 48, 3))], r"multiple of 16x16.*48x48.*restore_image"),
    ("maxim-too-small", "maxim", "__call__", [_s((1, 8, 8, 3))], r"at least 16x16.*8x8"),
    ("maxim-zero-size", "maxim", "__call__", [_s((1, 0, 16, 3))], r"empty axis"),
    ("maxim-rank3", "maxim", "__call__", [_s((16, 16, 3))], r"rank 4"),
    ("maxim-uint8", "maxim", "__call__", [_s((1, 16, 16, 3), U8)], r"floating.*astype"),
    ("maxim-channels", "maxim", "__call__", [_s((1, 16, 16, 1))], r"3 channels"),
    ("vit-wrong-size", "vit", "__call__", [_s((1, 31, 32, 3))], r"32x32.*got 31x32.*img_size"),
    ("vit-channels", "vit", "__call__", [_s((1, 32, 32, 1))], r"3 channels"),
    ("vit-uint8", "vit", "__call__", [_s((1, 32, 32, 3), U8)], r"floating"),
    ("lm-float-ids", "lm", "__call__", [_s((2, 8), F32)], r"integer token ids.*float32.*astype\(np.int32\)"),
    ("lm-bool-ids", "lm", "__call__", [_s((2, 8), jnp.bool_)], r"integer token ids.*bool"),
    ("lm-rank1", "lm", "__call__", [_s((8,), jnp.int32)], r"\(batch, length\).*ids\[None\]"),
    ("lm-rank3", "lm", "__call__", [_s((1, 8, 1), jnp.int32)], r"\(batch, length\)"),
    ("lm-zero-length", "lm", "__call__", [_s((1, 0), jnp.int32)], r"empty axis"),
    ("lra-wrong-length", "lra", "__call__", [_s((2, 15), jnp.int32)], r"length 16.*got 15.*mask"),
    ("lra-float-ids", "lra", "__call__", [_s((2, 16), F32)], r"integer token ids"),
    ("lra-mask-shape", "lra", "__call__", [_s((2, 16), jnp.int32), _s((2, 15))], r"mask.*\(2, 16\).*\(2, 15\)"),
    ("lra-zero-batch", "lra", "__call__", [_s((0, 16), jnp.int32)], r"empty axis"),
]


@pytest.mark.parametrize("key,method,args,match", [pytest.param(*c[1:], id=c[0]) for c in MODEL_CASES])
def test_model_rejects_bad_input(models, key, method, args, match):
    with pytest.raises(InputError, match=match):
        _trace(models[key], method, *args)


@pytest.mark.parametrize("key,ids,match", [
    pytest.param("lm", np.array([[0, 128]]), r"\[0, 128\).*\[0, 128\]", id="lm-id-too-big"),
    pytest.param("lm", np.array([[-1, 3]]), r"\[0, 128\)", id="lm-negative-id"),
    pytest.param("lra", np.full((1, 16), 20), r"\[0, 20\)", id="lra-id-too-big"),
])
def test_host_token_ids_out_of_vocab(models, key, ids, match):
    with pytest.raises(InputError, match=match):
        models[key](ids)  # raised before any computation


def test_model_rejects_a_list(models):
    with pytest.raises(InputError, match="must be an array.*list"):
        models["swin"]([[[[0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("key,method,args,out", [
    pytest.param("swin", "__call__", [_s((1, 1, 1, 3))], (1, 10), id="swin-1x1"),  # padded to one patch
    pytest.param("swin", "__call__", [_s((2, 3, 5, 3))], (2, 10), id="swin-odd"),
    pytest.param("swinv2", "__call__", [_s((1, 2, 70, 3), jnp.bfloat16)], (1, 10), id="swinv2-bf16-strip"),
    pytest.param("swin_uoe", "__call__", [_s((1, 1, 1, 3))], (1, 10), id="swin-uoe-1x1"),
    pytest.param("vit", "__call__", [_s((2, 32, 32, 3))], (2, 10), id="vit"),
    pytest.param("lm", "__call__", [_s((1, 1), jnp.int32)], (1, 1, 128), id="lm-one-token"),
    pytest.param("lm", "__call__", [_s((2, 5), jnp.uint8)], (2, 5, 128), id="lm-uint8-ids"),
    pytest.param("lra", "__call__", [_s((2, 16), jnp.int32), _s((2, 16), jnp.bool_)], (2, 10), id="lra-mask"),
])
def test_model_accepts_good_input(models, key, method, args, out):
    assert _trace(models[key], method, *args).shape == out


def test_maxim_accepts_any_multiple(models):
    out = _trace(models["maxim"], "__call__", _s((1, 16, 48, 3)))
    assert out[-1][-1].shape == (1, 16, 48, 3)


# ----------------------------------------------------------------------------- metrics
_RNG = np.random.default_rng(0)
IMG = _RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8)
NOISY = np.clip(IMG + _RNG.normal(0, 8, IMG.shape), 0, 255).astype(np.uint8)
FIMG, FNOISY = IMG / 255.0, NOISY / 255.0


def _nan(x):
    x = x.copy()
    x[3, 4, 0] = np.nan
    return x


METRIC_CASES = [
    # (id, function, target, pred, kwargs, message key words)
    ("shape-mismatch", "psnr", IMG, NOISY[:-1], {}, r"same shape.*\(24, 20, 3\).*\(23, 20, 3\)"),
    ("rank1", "psnr", IMG.ravel(), NOISY.ravel(), {}, r"\(H, W\), \(H, W, C\) or \(N, H, W, C\)"),
    ("rank5", "psnr", IMG[None, None], NOISY[None, None], {}, r"\(N, H, W, C\)"),
    ("empty", "psnr", IMG[:0], NOISY[:0], {}, r"empty"),
    ("empty-batch", "ssim", IMG[None][:0], NOISY[None][:0], {}, r"empty"),
    ("crop-too-big", "psnr", IMG, NOISY, {"crop_border": 10}, r"crop_border=10.*20x20|crop_border=10.*24x20"),
    ("crop-negative", "psnr", IMG, NOISY, {"crop_border": -2}, r"crop_border.*at least 0"),
    ("crop-float", "psnr", IMG, NOISY, {"crop_border": 1.5}, r"crop_border.*integer"),
    ("data-range-zero", "psnr", FIMG, FNOISY, {"data_range": 0}, r"data_range.*positive"),
    ("data-range-negative", "ssim", FIMG, FNOISY, {"data_range": -1.0}, r"data_range.*positive"),
    ("data-range-str", "psnr", FIMG, FNOISY, {"data_range": "255"}, r"data_range.*positive"),
    ("data-range-nan", "psnr", FIMG, FNOISY, {"data_range": float("nan")}, r"data_range.*positive"),
    ("int64-no-range", "psnr", IMG.astype(np.int64), NOISY.astype(np.int64), {}, r"int64.*data_range="),
    ("bool-images", "psnr", IMG > 100, NOISY > 100, {}, r"unsupported dtype bool"),
    ("complex-images", "psnr", FIMG + 0j, FNOISY + 0j, {}, r"unsupported dtype complex"),
    ("string-images", "psnr", np.array([["a"]]), np.array([["b"]]), {}, r"unsupported dtype"),
    ("float-0-255-as-unit", "psnr", IMG.astype(np.float32), NOISY.astype(np.float32), {},
     r"outside its range \[0, 1\].*0-255.*data_range=255"),
    ("float-negative", "ssim", FIMG - 2.0, FNOISY, {}, r"outside its range"),
    ("nan-pred", "psnr", FIMG, _nan(FNOISY), {}, r"pred contains 1 NaN or infinite value"),
    ("inf-target", "ssim", np.where(FIMG > 0.5, np.inf, FIMG), FNOISY, {}, r"target contains \d+ NaN or infinite"),
    ("uint16-above-range", "psnr", IMG.astype(np.uint16) * 64, NOISY.astype(np.uint16), {"data_range": 4095},
     r"outside its range \[0, 4095\]"),
    ("y-channel-rgba", "psnr", np.dstack([IMG, IMG[..., :1]]), np.dstack([NOISY, NOISY[..., :1]]),
     {"y_channel": True}, r"y_channel=True needs RGB.*4 channels.*\[\.\.\., :3\]"),
    ("y-channel-not-bool", "psnr", IMG, NOISY, {"y_channel": "yes"}, r"y_channel must be True or False"),
    ("ssim-below-window", "ssim", IMG[:10], NOISY[:10], {}, r"at least 11x11.*10x20"),
    ("ssim-crop-below-window", "ssim", IMG, NOISY, {"crop_border": 5}, r"at least 11x11.*14x10.*crop_border=5"),
    ("ragged-list", "psnr", [[0.1, 0.2], [0.3]], [[0.1, 0.2], [0.3]], {}, r"not a rectangular array"),
]


@pytest.mark.parametrize("fn,target,pred,kwargs,match", [pytest.param(*c[1:], id=c[0]) for c in METRIC_CASES])
def test_metric_rejects_bad_input(fn, target, pred, kwargs, match):
    with pytest.raises(InputError, match=match):
        getattr(eval_metrics, fn)(target, pred, **kwargs)


def _sk_ssim(a, b, data_range):
    from skimage.metrics import structural_similarity
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=-1)


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float64", "float32-255", "uint16-12bit"])
def test_metrics_agree_with_skimage(kind):
    from skimage.metrics import peak_signal_noise_ratio

    a, b, kwargs, rng = {
        "uint8": (IMG, NOISY, {}, 255),
        "uint16": (IMG.astype(np.uint16) * 257, NOISY.astype(np.uint16) * 257, {}, 65535),
        "float64": (FIMG, FNOISY, {}, 1.0),
        "float32-255": (IMG.astype(np.float32), NOISY.astype(np.float32), {"data_range": 255}, 255),
        "uint16-12bit": (IMG.astype(np.uint16) * 16, NOISY.astype(np.uint16) * 16, {"data_range": 4095}, 4095),
    }[kind]
    assert eval_metrics.psnr(a, b, **kwargs) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=rng), abs=1e-6)
    assert eval_metrics.ssim(a, b, **kwargs) == pytest.approx(_sk_ssim(a, b, rng), abs=1e-6)
    if kind == "uint16-12bit":  # x16 is not an exact rescaling of 0-255 to 0-4095
        return
    # the same picture in any dtype scores the same (the -62 dB uint16 bug)
    assert eval_metrics.psnr(a, b, **kwargs) == pytest.approx(eval_metrics.psnr(IMG, NOISY), abs=1e-6)


def test_metric_conventions_crop_y_batch_and_identical():
    from skimage.metrics import peak_signal_noise_ratio

    c = 3
    assert eval_metrics.psnr(IMG, NOISY, crop_border=c) == pytest.approx(
        peak_signal_noise_ratio(IMG[c:-c, c:-c], NOISY[c:-c, c:-c], data_range=255), abs=1e-6)
    y = lambda x: x.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0  # noqa: E731
    assert eval_metrics.psnr(IMG, NOISY, y_channel=True) == pytest.approx(
        peak_signal_noise_ratio(y(IMG), y(NOISY), data_range=255), abs=1e-6)
    batch_a, batch_b = np.stack([IMG, IMG]), np.stack([NOISY, IMG[::-1]])
    per_image = [eval_metrics.psnr(IMG, NOISY), eval_metrics.psnr(IMG, IMG[::-1])]
    assert eval_metrics.psnr(batch_a, batch_b) == pytest.approx(np.mean(per_image))
    assert eval_metrics.psnr(IMG, IMG) == np.inf and eval_metrics.ssim(IMG, IMG) == pytest.approx(1.0)
    flat = np.full((12, 12), 0.5)
    assert eval_metrics.psnr(flat, flat) == np.inf and eval_metrics.ssim(flat, flat) == pytest.approx(1.0)
    # an unclipped prediction slightly outside [0, 1] is the official convention, not an error
    assert np.isfinite(eval_metrics.psnr(FIMG, FNOISY * 1.05 - 0.02))


# ----------------------------------------------------------------------------- restore_image
class _Restoration(nnx.Module):
    """A stand-in restoration model (outputs[stage][scale] like MAXIM, size multiple 16) that compiles in
    no time: the argument checks do not depend on the network; tests/test_maxim_restore.py runs MAXIM."""

    size_multiple = (16, 16)

    def __init__(self, gain: float = 1.0):
        self.gain = nnx.Param(jnp.asarray(gain, jnp.float32))

    def __call__(self, x):
        assert x.shape[1] % 16 == 0 and x.shape[2] % 16 == 0, x.shape  # restore_image padded or tiled it
        return [[x * self.gain[...]]]


@pytest.fixture(scope="module")
def identity():
    return Restorer(_Restoration())


RESTORE_CASES = [
    # (id, image, kwargs, message key words)
    ("batch-size-negative", IMG, {"tile": 16, "batch_size": -1}, r"batch_size must be at least 1; got -1"),
    ("batch-size-zero", IMG, {"batch_size": 0}, r"batch_size must be at least 1"),
    ("batch-size-float", IMG, {"batch_size": 2.0}, r"batch_size must be an integer"),
    ("batch-size-str", IMG, {"batch_size": "4"}, r"batch_size must be an integer"),
    ("tile-zero", IMG, {"tile": 0}, r"tile must be at least 1"),
    ("tile-negative", IMG, {"tile": -64}, r"tile must be at least 1"),
    ("tile-not-multiple", IMG, {"tile": 20}, r"tile=20.*multiple.*\(16, 16\).*16 or 32"),
    ("tile-float", IMG, {"tile": 16.0}, r"tile must be an integer"),
    ("tile-bool", IMG, {"tile": True}, r"tile must be an integer"),
    ("overlap-negative", IMG, {"tile": 16, "overlap": -1}, r"overlap must be at least 0"),
    ("overlap-too-big", IMG, {"tile": 32, "overlap": 20}, r"overlap=20.*half the tile.*16"),
    ("overlap-equals-tile", IMG, {"tile": 16, "overlap": 16}, r"overlap=16.*half the tile"),
    ("overlap-float", IMG, {"overlap": 1.5}, r"overlap must be an integer"),
    ("clip-not-bool", IMG, {"clip": "no"}, r"clip must be True or False"),
    ("image-empty", IMG[:0], {}, r"empty.*\(0, 20, 3\)"),
    ("image-empty-2d", np.zeros((5, 0), np.uint8), {}, r"empty"),
    ("image-rank1", IMG.ravel(), {}, r"\(H, W\), \(H, W, 1\)"),
    ("image-batch", IMG[None], {}, r"one image at a time"),
    ("image-2-channels", IMG[..., :2], {}, r"shape"),
    ("image-5-channels", np.dstack([IMG, IMG[..., :2]]), {}, r"shape"),
    ("image-nan", _nan(FIMG), {}, r"NaN or infinite"),
    ("image-inf", np.full((8, 8, 3), np.inf), {}, r"NaN or infinite"),
    ("image-int64", IMG.astype(np.int64), {}, r"dtype int64.*uint8, uint16 or float"),
    ("image-bool", IMG > 3, {}, r"dtype bool"),
    ("image-float-0-255", IMG.astype(np.float32), {}, r"\[0, 1\].*255"),
    ("image-ragged", [[0.1, 0.2], [0.3]], {}, r"not a rectangular array"),
]


@pytest.mark.parametrize("image,kwargs,match", [pytest.param(*c[1:], id=c[0]) for c in RESTORE_CASES])
def test_restore_image_rejects_bad_arguments(identity, image, kwargs, match):
    with pytest.raises(InputError, match=match):
        restore_image(identity, image, **kwargs)


def test_restore_rejects_a_non_model_and_integer_batches(identity):
    with pytest.raises(InputError, match="nnx.Module.*str"):
        restore_image("maxim_tiny", IMG)
    with pytest.raises(InputError, match="floating.*astype"):
        identity(IMG[None, :16, :16])  # uint8 straight into the jitted model would be off by 255x
    with pytest.raises(InputError, match="overlap"):
        tile_starts(100, 16, 16)


@pytest.mark.parametrize("kwargs", [{}, {"tile": 16, "overlap": 4, "batch_size": 3}, {"tile": 32, "overlap": 0}],
                         ids=["whole", "tiled-batch3", "tiled-no-overlap"])
def test_restore_good_arguments_are_exact(identity, kwargs):
    for img in (IMG, IMG[:5, :7, 0], IMG[:1, :1], FIMG.astype(np.float32)):  # any size >= 1x1
        out = restore_image(identity, img, **kwargs)
        assert out.dtype == img.dtype and out.shape == img.shape
        np.testing.assert_allclose(out, img, atol=1e-6)


class _Classifier(nnx.Module):
    def __init__(self):
        self.w = nnx.Param(jnp.ones((3, 10)))

    def __call__(self, x):
        return x.mean((1, 2)) @ self.w[...]


def test_restore_refuses_a_classifier():
    with pytest.raises(InputError, match=r"\(1, 24, 20, 3\) to \(1, 10\).*restoration model"):
        restore_image(_Classifier(), IMG)


def test_restore_refuses_to_write_a_nan_result():
    with pytest.raises(FloatingPointError, match="NaN.*weights"):
        restore_image(Restorer(_Restoration(np.nan)), IMG)  # not a silently black image


# ----------------------------------------------------------------------------- weight files
def _safetensors_bytes(tmp_path) -> bytes:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((3, 4), np.float32)}, tmp_path / "good.safetensors", metadata={"format": "x"})
    return (tmp_path / "good.safetensors").read_bytes()


def _npz_bytes(tmp_path, **arrays) -> bytes:
    np.savez(tmp_path / "tmp.npz", **(arrays or {"w": np.ones(3)}))
    return (tmp_path / "tmp.npz").read_bytes()


def _zip_bytes(tmp_path, members: dict) -> bytes:
    import zipfile

    with zipfile.ZipFile(tmp_path / "tmp.zip", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return (tmp_path / "tmp.zip").read_bytes()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
RANDOM = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
FILE_CASES = [
    # (id, file name, contents (bytes or a function of tmp_path), message key words)
    ("safetensors-empty", "w.safetensors", b"", r"empty \(0 bytes\)"),
    ("safetensors-truncated", "w.safetensors", lambda t: _safetensors_bytes(t)[:-5], r"truncated"),
    ("safetensors-header-cut", "w.safetensors", lambda t: _safetensors_bytes(t)[:20], r"truncated"),
    ("safetensors-png", "w.safetensors", PNG, r"not a safetensors file.*PNG image"),
    ("safetensors-random", "w.safetensors", RANDOM, r"not a safetensors file"),
    ("safetensors-is-npz", "w.safetensors", lambda t: _npz_bytes(t), r"not a safetensors file.*zip.*rename"),
    ("safetensors-lfs-pointer", "w.safetensors", b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n",
     r"Git LFS pointer.*git lfs pull"),
    ("npz-empty", "w.npz", b"", r"empty"),
    ("npz-random", "w.npz", RANDOM, r"not an .npz archive"),
    ("npz-png", "w.npz", PNG, r"not an .npz archive.*PNG"),
    ("npz-truncated", "w.npz", lambda t: _npz_bytes(t)[:-30], r"truncated or corrupted .npz"),
    ("npz-pickle", "w.npz", lambda t: _npz_bytes(t, w=np.array([{"evil": 1}], dtype=object)),
     r"pickled object array 'w'.*never loaded"),
    ("npz-strings", "w.npz", lambda t: _npz_bytes(t, w=np.array(["a"])), r"'w' has dtype <U1, not numbers"),
    ("npz-no-arrays", "w.npz", lambda t: (np.savez(t / "e.npz"), (t / "e.npz").read_bytes())[1], r"holds no arrays"),
    ("npz-is-npy", "w.npz", lambda t: (np.save(t / "a.npy", np.ones(3)), (t / "a.npy").read_bytes())[1],
     r"single .npy array"),
    ("npz-is-safetensors", "w.npz", lambda t: _safetensors_bytes(t), r"safetensors file: rename it to .safetensors"),
    ("npz-is-torch-zip", "w.npz", lambda t: _zip_bytes(t, {"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3"}),
     r"torch checkpoint.*rename it to .pth"),
    ("npz-zip-of-pngs", "w.npz", lambda t: _zip_bytes(t, {"a.png": PNG}), r"member 'a.png' is not a numpy array"),
    ("torch-empty", "w.pth", b"", r"empty"),
    ("torch-png", "w.pth", PNG, r"not a torch checkpoint.*PNG"),
    ("torch-random", "w.bin", RANDOM, r"not a torch checkpoint"),
    ("torch-truncated-zip", "w.pt", lambda t: _npz_bytes(t)[:-30], r"truncated or corrupted torch"),
    ("pickle-extension", "w.pkl", pickle.dumps({"w": 1}), r"Unsupported checkpoint format.*never loaded.*pickle"),
    ("unknown-extension", "w.weights", lambda t: _safetensors_bytes(t), r"Unsupported.*rename it to .safetensors"),
]


@pytest.mark.parametrize("name,contents,match", [pytest.param(*c[1:], id=c[0]) for c in FILE_CASES])
def test_weight_file_problems_are_named(tmp_path, name, contents, match):
    path = tmp_path / name
    path.write_bytes(contents(tmp_path) if callable(contents) else contents)
    with pytest.raises(WeightsFileError, match=match) as err:
        read_state_dict(path)
    msg = str(err.value)
    assert str(path) in msg  # names the file
    assert "weights_only=False" not in msg and "allow_pickle=True" not in msg
    if not any(w in msg for w in ("pickled object", "not numbers", "no arrays")):
        with pytest.raises(WeightsFileError, match=match):  # found without reading any array
            check_weights_file(path)


def test_weight_file_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_state_dict(tmp_path / "missing.safetensors")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(_safetensors_bytes(tmp_path))
    with pytest.raises(WeightsFileError, match=r"is a directory.*model.safetensors"):
        read_state_dict(tmp_path / "run")
    with pytest.raises(WeightsFileError, match="string or os.PathLike"):
        read_state_dict(None)
    with pytest.raises(FileNotFoundError, match="~ is not expanded"):
        read_state_dict("~/surely-missing-flaxzoo-weights.npz")
    # the good files still load, metadata included
    np.testing.assert_array_equal(read_state_dict(tmp_path / "run" / "model.safetensors")["w"], np.ones((3, 4)))
    assert read_safetensors_metadata(tmp_path / "good.safetensors") == {"format": "x"}
    (tmp_path / "ok.npz").write_bytes(_npz_bytes(tmp_path))
    assert list(read_state_dict(tmp_path / "ok.npz")) == ["w"]
    assert check_weights_file(tmp_path / "ok.npz") == str(tmp_path / "ok.npz")


def test_load_pretrained_names_a_bad_file(tmp_path):
    path = tmp_path / "swin.npz"
    path.write_bytes(PNG)
    with pytest.raises(WeightsFileError, match="not an .npz archive.*PNG"):
        flaxzoo.load_pretrained("swin_test_tiny", str(path))


class _FakeTensor:
    def __init__(self, value):
        self.value, self.shape = np.asarray(value, np.float32), np.shape(value)

    def is_floating_point(self):
        return True

    def detach(self):
        return self

    def float(self):
        return self

    def numpy(self):
        return self.value


@pytest.fixture
def fake_torch(monkeypatch):
    """torch is not installed here: a stand-in whose `load` asserts weights_only=True and does what it is told."""
    module = types.ModuleType("torch")
    module.behaviour = None

    def load(path, map_location=None, weights_only=False):
        assert weights_only is True, "torch.load must be called with weights_only=True"
        result = module.behaviour()
        return result

    module.load = load
    monkeypatch.setitem(sys.modules, "torch", module)
    return module


def _raise(exc):
    def f():
        raise exc
    return f


@pytest.mark.parametrize("behaviour,match", [
    pytest.param(_raise(pickle.UnpicklingError(
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
        "but it can result in arbitrary code execution.")), r"never unpickles.*state_dict", id="torch-pickled-objects"),
    pytest.param(_raise(RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central "
                                     "directory")), r"corrupted torch checkpoint.*PytorchStreamReader", id="torch-corrupt"),
    pytest.param(lambda: _FakeTensor([1.0]), r"holds a _FakeTensor, not a state dict", id="torch-bare-tensor"),
    pytest.param(lambda: {"epoch": 3}, r"holds no arrays", id="torch-no-tensors"),
])
def test_torch_file_problems_are_named(tmp_path, fake_torch, behaviour, match):
    path = tmp_path / "w.pth"
    path.write_bytes(_npz_bytes(tmp_path))  # a zip archive, like a real torch file
    fake_torch.behaviour = behaviour
    with pytest.raises(WeightsFileError, match=match) as err:
        read_state_dict(path)
    assert str(path) in str(err.value) and "weights_only" not in str(err.value)


def test_torch_good_file_and_missing_torch(tmp_path, fake_torch, monkeypatch):
    path = tmp_path / "w.pth"
    path.write_bytes(_npz_bytes(tmp_path))
    fake_torch.behaviour = lambda: {"state_dict": {"fc.weight": _FakeTensor([[1.0, 2.0]])}, "epoch": 3}
    np.testing.assert_array_equal(read_state_dict(path)["fc.weight"], [[1.0, 2.0]])
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(WeightsFileError, match="needs PyTorch"):
        read_state_dict(path)


# ----------------------------------------------------------------------------- the helpers themselves
@pytest.mark.parametrize("value,match", [
    pytest.param(True, "integer", id="bool"), pytest.param(2.5, "integer", id="float"),
    pytest.param("3", "integer", id="str"), pytest.param(0, "at least 1", id="zero"),
    pytest.param(-7, "at least 1; got -7", id="negative"),
])
def test_check_positive_int(value, match):
    with pytest.raises(InputError, match=f"steps must be.*{match}"):
        check_positive_int(value, "steps")


def test_helpers_accept_good_values():
    assert check_positive_int(np.int64(3), "n") == 3
    check_finite(np.ones(3), "x")
    with pytest.raises(InputError, match="x contains 1 NaN"):
        check_finite(np.array([1.0, np.nan]), "x")


@pytest.mark.parametrize("name,kwargs,match", [
    pytest.param("swin_test_tiny", {"num_classes": -1}, r"SwinTransformer: num_classes must be an integer >= 0; got -1",
                 id="swin-negative-classes"),
    pytest.param("swin_test_tiny", {"num_classes": 2.5}, r"num_classes must be an integer", id="swin-float-classes"),
    pytest.param("swin_test_tiny", {"num_classes": "10"}, r"num_classes must be an integer", id="swin-str-classes"),
    pytest.param("swin_test_tiny", {"in_chans": 0}, r"in_chans must be an integer >= 1", id="swin-zero-channels"),
    pytest.param("swin_test_tiny", {"window_size": 0}, r"window_size", id="swin-zero-window"),
    pytest.param("swin_test_tiny", {"img_size": (64, 0)}, r"every entry of img_size", id="swin-zero-img-size"),
    pytest.param("swin_test_tiny", {"drop_path_rate": 1.5}, r"drop_path_rate must be a probability", id="swin-rate"),
    pytest.param("maxim_tiny", {"features": 0}, r"MAXIM: features", id="maxim-zero-features"),
    pytest.param("maxim_tiny", {"in_channels": -3}, r"MAXIM: in_channels", id="maxim-negative-channels"),
    pytest.param("uoe_vit_test_tiny", {"num_classes": -3}, r"UoEViT: num_classes", id="vit-negative-classes"),
    pytest.param("uoe_lm_tiny", {"vocab_size": 0}, r"UoELM: vocab_size", id="lm-zero-vocab"),
    pytest.param("uoe_lra_listops", {"num_classes": 0}, r"UoELRAClassifier: num_classes must be an integer >= 1",
                 id="lra-zero-classes"),
])
def test_model_constructor_arguments(name, kwargs, match):
    with pytest.raises(InputError, match=match):
        flaxzoo.create_model(name, **kwargs)  # checked before any parameter is built
