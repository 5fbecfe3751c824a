"""Swin behaviour beyond golden parity: presets, converter coverage, any input size, features,
train/eval mode, training, table resizing, and the errors users see."""
import functools
import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.layers import Mlp
from flaxzoo.models import swin
from flaxzoo.models.convert.common import model_param_shapes
from flaxzoo.models.convert.swin import (_cubic_weights, check_key_coverage, convert, mapped_shapes,
                                         resize_bias_table)
from flaxzoo.train.step import init_train_state, make_train_step

TIMM = json.loads((pathlib.Path(__file__).parent / "golden" / "swin" / "timm_keys.json").read_text())["variants"]


def _abstract(name, **overrides):
    return nnx.eval_shape(lambda: flaxzoo.create_model(name, rngs=nnx.Rngs(0), **overrides))


@functools.lru_cache(maxsize=None)
def _abstract_cached(name):
    return _abstract(name)


def _eval_shape_call(model, method, *shapes):
    """Output shapes of `model.<method>(*inputs)` for a shape-only model."""
    graphdef, state = nnx.split(model)
    return jax.eval_shape(lambda st, *xs: getattr(nnx.merge(graphdef, st), method)(*xs), state, *shapes)


def _fast_model(name, seed=0, builder=None, **overrides):
    """A real model without paying CPU random-init compiles (~1 s per distinct shape): shape-only
    build, then numpy weights (trunc-normal-like 0.02 kernels, LayerNorm 1/0, log(10) logit scales)
    and distinct RNG keys for dropout / drop path."""
    if builder is None:
        model = _abstract(name, **overrides)
    else:
        model = nnx.eval_shape(lambda: builder(**overrides, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)
    params = {}
    for path, shape in model_param_shapes(model).items():
        leaf = path.rsplit(".", 1)[-1]
        if leaf == "scale":
            params[path] = np.ones(shape, np.float32)
        elif leaf in ("bias", "q_bias", "v_bias"):
            params[path] = np.zeros(shape, np.float32)
        elif leaf == "logit_scale":
            params[path] = np.full(shape, np.log(10.0), np.float32)
        else:
            params[path] = np.clip(rng.normal(0, 0.02, shape), -0.04, 0.04).astype(np.float32)
    from flaxzoo.models.convert.common import assign_params

    assign_params(model, params)
    _, _, rest = nnx.split(model, nnx.Param, ...)
    counter = iter(range(1, 1 << 30))

    def concrete(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.array([seed, next(counter)], jnp.uint32))
        return jnp.zeros(leaf.shape, leaf.dtype)

    nnx.update(model, jax.tree.map(concrete, rest))
    return model


# ------------------------------------------------------------------ presets and converter coverage

@pytest.mark.parametrize("name", sorted(TIMM))
def test_param_count_and_converter_cover_timm(name):
    """Exact timm parameter count, and every timm key (and its official-layout twin) maps."""
    model = _abstract_cached(name)
    shapes = model_param_shapes(model)
    assert sum(int(np.prod(s)) for s in shapes.values()) == TIMM[name]["num_params"]
    timm_shapes = {k: tuple(v) for k, v in TIMM[name]["state_dict"].items()}
    assert len(timm_shapes) == TIMM[name]["num_keys"]
    check_key_coverage(model, timm_shapes)  # raises listing missing / unexpected / mis-shaped keys
    # Official Microsoft layout: downsample at the end of stage i, `head`, saved index/mask buffers.
    official = {}
    for k, v in timm_shapes.items():
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
        k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}" if m else k.replace("head.fc.", "head.")
        official[k] = v
    official.update({k: tuple(v) for k, v in TIMM[name]["non_persistent_buffers"].items()})
    check_key_coverage(model, official)


TIMM_NAMES = [f"swin_{s}_patch4_window7_224" for s in ("tiny", "small", "base", "large")] + [
    "swin_base_patch4_window12_384", "swin_large_patch4_window12_384"] + [
    f"swinv2_{s}_window{w}_256" for s in ("tiny", "small", "base") for w in (8, 16)] + [
    f"swinv2_{s}_window12{t}" for s in ("base", "large") for t in ("_192", "to16_192to256", "to24_192to384")]


def test_all_timm_names_registered():
    names = set(flaxzoo.list_models("swin*"))
    assert set(TIMM_NAMES) <= names and "swin_test_tiny" in names
    for name in TIMM_NAMES:
        info = flaxzoo.get_spec(name).info
        assert info["interpolation"] == "bicubic" and info["input_size"][0] == int(name[-3:])


@pytest.mark.slow
@pytest.mark.parametrize("name", TIMM_NAMES)
def test_every_timm_preset_runs_shape_only(name):
    model = _abstract(name)
    spec = flaxzoo.get_spec(name)
    h, w, _ = spec.info["input_size"]
    out = _eval_shape_call(model, "__call__", jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32))
    assert out.shape == (1, spec.kwargs["num_classes"]), name


def test_v2_pretrained_window_presets():
    # the preset's window topology at width 8 and depth 1 per stage (shape-only build of the base model is slow)
    kwargs = {**flaxzoo.get_spec("swinv2_base_window12to16_192to256").kwargs, "embed_dim": 8,
              "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)}
    model = nnx.eval_shape(lambda: swin.SwinTransformer(**kwargs, rngs=nnx.Rngs(0)))
    cpbs = [stage.blocks[0].attn.cpb for stage in model.layers]
    assert [c.window for c in cpbs] == [(16, 16), (16, 16), (16, 16), (8, 8)]  # last grid 8 clamps the window
    assert [c.pretrained_window for c in cpbs] == [(12, 12), (12, 12), (12, 12), (6, 6)]


# ------------------------------------------------------------------ any input size, features

@pytest.mark.parametrize("hw,final", [((300, 500), (10, 16)), ((97, 131), (4, 5))])
def test_swin_tiny_any_input_size_shapes(hw, final):
    model = _abstract_cached("swin_tiny_patch4_window7_224")
    x = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    feats = _eval_shape_call(model, "features", x)
    assert feats[-1].shape == (1, *final, 768)  # timm gives (1, 10, 16, 768) at 300x500
    assert _eval_shape_call(model, "__call__", x).shape == (1, 1000)


def test_swin_tiny_real_forward_97x131():
    """The full swin_tiny on an input timm rejects (97 is not a multiple of the patch)."""
    model = _fast_model("swin_tiny_patch4_window7_224")
    x = jax.random.normal(jax.random.key(0), (1, 97, 131, 3))
    logits = nnx.jit(lambda m, x: m(x))(model, x)
    assert logits.shape == (1, 1000) and bool(jnp.all(jnp.isfinite(logits)))


@pytest.fixture(scope="module")
def tiny():
    return _fast_model("swin_test_tiny")


# One jitted function and one input shape for every tiny-model forward below, so they share a compile.
_run = nnx.jit(lambda m, x: (m.features(x), m.forward_features(x), m(x)))
_X = jax.random.normal(jax.random.key(1), (2, 97, 131, 3))


def test_tiny_real_forward_odd_size_and_feature_strides(tiny):
    feats, normed, logits = _run(tiny, _X)
    # ceil(97/4)=25 -> 13 -> 7 -> 4; ceil(131/4)=33 -> 17 -> 9 -> 5 (odd maps are padded before merging):
    # strides 4, 8, 16, 32 up to rounding up
    assert [f.shape for f in feats] == [(2, 25, 33, 8), (2, 13, 17, 16), (2, 7, 9, 32), (2, 4, 5, 64)]
    assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))
    # forward_features = final LayerNorm of the last stage map; logits = head(mean over H, W)
    np.testing.assert_allclose(normed, tiny.norm(feats[-1]), atol=1e-5)
    np.testing.assert_allclose(logits, tiny.head.fc(normed.mean(axis=(1, 2))), atol=1e-5)


def test_padding_does_not_leak_into_the_image(tiny):
    """Zero padding to the patch multiple is bottom/right only: a crop that is already a multiple
    gives the same top-left stage-0 map as the same pixels with extra rows below."""
    x = jax.random.normal(jax.random.key(2), (1, 64, 64, 3))
    pe = nnx.jit(lambda m, x: m.patch_embed(x))
    a, b = pe(tiny, x), pe(tiny, x[:, :62, :61])
    np.testing.assert_allclose(a[:, :15, :15], b[:, :15, :15], atol=1e-6)


# ------------------------------------------------------------------ train / eval and training

def test_drop_path_only_in_train_mode(tiny):
    block = tiny.layers[3].blocks[1]
    assert block.drop_path1.rate > 0  # linear schedule: the last block gets the full rate
    assert tiny.layers[0].blocks[0].drop_path1.rate == 0.0
    def logits():
        return _run(tiny, _X)[2]

    np.testing.assert_array_equal(logits(), logits())  # created in eval mode: deterministic
    tiny.train()
    try:
        a, b = logits(), logits()
        assert not np.allclose(a, b), "drop path had no effect in train mode"
    finally:
        tiny.eval()
    np.testing.assert_array_equal(logits(), logits())


@pytest.mark.parametrize("v2", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["v1", "v2"])
def test_tiny_swin_overfits_a_few_images(v2):
    # Two stages keep the compile short; the blocks (shifted windows, merging, head) are the real ones.
    model = _fast_model(None, seed=1, builder=swin.SwinTransformer, v2=v2, img_size=16, window_size=4,
                        embed_dim=16, depths=(2, 2), num_heads=(2, 2), num_classes=4, drop_path_rate=0.1)
    images = jax.random.normal(jax.random.key(5), (4, 16, 16, 3))
    labels = jnp.arange(4)

    def loss_fn(m, batch, rng):
        logits = m(batch["image"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return loss, {"accuracy": (logits.argmax(-1) == batch["label"]).mean()}

    state = init_train_state(model, optax.adam(3e-3))
    step = make_train_step(loss_fn)
    batch = {"image": images, "label": labels}
    first = None
    for i in range(40):
        state, metrics = step(state, batch, jax.random.key(i))
        first = float(metrics["loss"]) if first is None else first
    assert np.isfinite(first) and float(metrics["loss"]) < 0.1 * first, (first, float(metrics["loss"]))
    assert float(metrics["accuracy"]) == 1.0


def test_custom_mlp_factory_is_used():
    calls = []

    def factory(dim, hidden, *, rngs):
        calls.append((dim, hidden))
        return Mlp(dim, hidden // 2, rngs=rngs)

    model = nnx.eval_shape(lambda: swin.SwinTransformer(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 1),
                                                        window_size=4, num_classes=3, mlp_factory=factory,
                                                        rngs=nnx.Rngs(0)))
    assert calls == [(8, 32), (16, 64)]
    assert model_param_shapes(model)["layers.1.blocks.0.mlp.fc1.kernel"] == (16, 32)


# ------------------------------------------------------------------ relative-position table resizing

def test_cubic_weights_match_torch_bicubic_properties():
    w = _cubic_weights(13, 23)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)  # partition of unity
    # torch, align_corners=False: output i samples input (i + 0.5) * 13/23 - 0.5; the centre maps to the centre.
    np.testing.assert_allclose(w[11], np.eye(13)[6], atol=1e-12)
    np.testing.assert_allclose(_cubic_weights(13, 13), np.eye(13), atol=1e-12)


def test_resize_bias_table():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(13 * 13, 3)).astype(np.float32)
    out = resize_bias_table(table, (12, 12))
    assert out.shape == (23 * 23, 3) and out.dtype == np.float32
    # zero relative offset (the centre row) keeps its value for every head
    np.testing.assert_allclose(out[(23 * 23) // 2], table[(13 * 13) // 2], atol=1e-6)
    const = np.full((13 * 13, 2), 0.7, np.float32)
    np.testing.assert_allclose(resize_bias_table(const, (12, 12)), 0.7, atol=1e-6)
    assert resize_bias_table(table, (7, 7)) is table
    with pytest.raises(ValueError, match="square windows"):
        resize_bias_table(table[:-1], (12, 12))


def test_convert_resizes_window7_checkpoint_into_window12_model():
    w7 = {k: tuple(v) for k, v in TIMM["swin_base_patch4_window7_224"]["state_dict"].items()}
    model12 = _abstract_cached("swin_base_patch4_window12_384")
    check_key_coverage(model12, w7)  # only the tables differ, and they are resized
    mapped = mapped_shapes(w7, model_param_shapes(model12))
    assert mapped["layers.0.blocks.0.attn.rel_bias.relative_position_bias_table"] == (529, 4)


def test_convert_loads_values_into_real_model(tiny):
    """Round trip through timm names: values land transposed in the right places."""
    model = _fast_model("swin_test_tiny", seed=3)
    sd = {}
    for path, value in nnx.to_flat_state(nnx.state(tiny, nnx.Param)):
        key, v = ".".join(map(str, path)), np.asarray(value.get_value())
        key = key.replace(".rel_bias.", ".").replace(".cpb.fc1.", ".cpb_mlp.0.").replace(".cpb.fc2.", ".cpb_mlp.2.")
        if key.endswith(".kernel"):
            key, v = key[:-6] + "weight", (v.transpose(3, 2, 0, 1) if v.ndim == 4 else v.T)
        elif key.endswith(".scale"):
            key = key[:-5] + "weight"
        sd[key] = v
    convert(model, sd)
    np.testing.assert_allclose(_run(model, _X)[2], _run(tiny, _X)[2], atol=1e-6)


# ------------------------------------------------------------------ errors users see

def test_bad_checkpoint_lists_missing_extra_and_misshaped_keys():
    model = _abstract_cached("swin_tiny_patch4_window7_224")
    shapes = {k: tuple(v) for k, v in TIMM["swin_tiny_patch4_window7_224"]["state_dict"].items()}
    del shapes["layers.2.blocks.3.mlp.fc1.bias"]
    shapes["layers.9.blocks.0.norm1.weight"] = (96,)
    shapes["head.fc.weight"] = (21841, 768)
    with pytest.raises(ValueError) as err:
        check_key_coverage(model, shapes)
    msg = str(err.value)
    assert "layers.2.blocks.3.mlp.fc1.bias" in msg and "Missing" in msg
    assert "layers.9.blocks.0.norm1.scale" in msg and "Not in the model" in msg
    assert "head.fc.kernel" in msg and "(768, 21841)" in msg and "number of classes" in msg


def test_bad_checkpoint_values_fail_on_real_convert(tiny):
    with pytest.raises(ValueError, match="Missing from the checkpoint"):
        convert(tiny, {"patch_embed.proj.weight": np.zeros((8, 3, 4, 4), np.float32)})


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match="swin_tiny_patch4_window7_224"):
        flaxzoo.create_model("swin_tiny_patch4_window7")


# ------------------------------------------------------------------ scripts/convert.py

def _convert_cli():
    import importlib.util

    path = pathlib.Path(__file__).parents[1] / "scripts" / "convert.py"
    spec = importlib.util.spec_from_file_location("convert_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_cli_reports_unknown_model(tmp_path, capsys):
    assert _convert_cli().main(["swin_tiny_patch4", "x.safetensors", str(tmp_path / "y.safetensors")]) == 2
    assert "swin_tiny_patch4_window7_224" in capsys.readouterr().err


@pytest.mark.slow
def test_convert_cli_roundtrip_matches_golden(tmp_path):
    golden = pathlib.Path(__file__).parent / "golden" / "swin"
    dst = tmp_path / "ns.safetensors"
    kw = ["--num-classes", "5", "--set", "img_size=(64,96)", "--set", "window_size=4", "--set", "embed_dim=16",
          "--set", "depths=(2,2,2)", "--set", "num_heads=(1,2,4)"]
    assert _convert_cli().main(["swin_test_tiny", str(golden / "v1_nonsquare.params.safetensors"), str(dst), *kw]) == 0
    model = flaxzoo.load_pretrained("swin_test_tiny", str(dst), img_size=(64, 96), window_size=4, embed_dim=16,
                                    depths=(2, 2, 2), num_heads=(1, 2, 4), num_classes=5)
    io = np.load(golden / "v1_nonsquare.io.npz")
    logits = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(io["input"].transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(logits, io["logits"], atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ sharding

def test_every_param_has_logical_axes():
    model = _abstract("swinv2_test_tiny")
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        names = var.get_metadata().get("out_sharding")
        assert names is not None and len(names) == len(var.get_value().shape), (path, names)


@pytest.mark.slow  # the default suite's sharded Swin run: test_train_mesh.py (swin-2x2x2, forward and backward)
def test_sharded_forward_matches_single_device(tiny):
    from flaxzoo.train.sharding import batch_sharding, make_mesh, shard_model

    if jax.device_count() < 8:
        pytest.skip("needs 8 (CPU) devices, set up by conftest")
    expected = _run(tiny, _X)[2]
    model = _fast_model("swin_test_tiny")  # same seed, same weights as `tiny`
    mesh = make_mesh({"data": 2, "fsdp": 2, "model": 2})
    shard_model(model, mesh)
    x = jax.device_put(jnp.concatenate([_X, _X]), batch_sharding(mesh, 4))
    logits = nnx.jit(lambda m, x: m(x))(model, x)
    np.testing.assert_allclose(logits[:2], expected, atol=1e-5)
    assert model.layers[0].blocks[0].attn.qkv.kernel.get_value().sharding.spec == jax.sharding.PartitionSpec("fsdp", "model")


# ------------------------------------------------------------------ WindowAttention on its own

@pytest.mark.parametrize("cosine", [False, True], ids=["v1", "v2"])
def test_window_attention_mask_separates_regions(cosine):
    from flaxzoo.layers.window_attention import WindowAttention

    attn = WindowAttention(8, 2, (2, 2), cosine=cosine, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(7), (3, 4, 8))  # 3 windows of 2x2 tokens
    region = np.array([0, 0, 1, 1])  # one mask for all windows: tokens {0,1} vs {2,3}
    mask = np.where(region[:, None] != region[None, :], -100.0, 0.0).astype(np.float32)[None]
    y = attn(x, mask)
    y2 = attn(x.at[:, 2:].add(5.0), mask)  # change only the second region
    np.testing.assert_allclose(y2[:, :2], y[:, :2], atol=1e-5)
    assert not np.allclose(y2[:, 2:], y[:, 2:])
    assert not np.allclose(attn(x)[:, :2], y[:, :2])  # without the mask the regions mix
