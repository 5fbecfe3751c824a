"""The front door: weights a training run writes load back from the file alone, and the timm-style API
(create_model with pretrained / checkpoint_path / features_only / num_classes, list_models, pretrained_cfg,
forward_features / forward_head / reset_classifier)."""
import importlib.util
import os
import pathlib
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.models.convert.common import model_param_shapes, native_metadata, save_params

ROOT = pathlib.Path(__file__).parents[1]


def load_config(relpath):
    spec = importlib.util.spec_from_file_location("cfg_" + relpath.replace("/", "_")[:-3], ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def one_step(c, batch_size=8):
    c.batch_size, c.total_steps = batch_size, 1
    c.log_every, c.eval_every, c.checkpoint_every = 1, 0, 1
    return c


def params_of(model):
    return {"/".join(map(str, p)): np.asarray(v.get_value())
            for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def assert_same_params(a, b):
    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


# ------------------------------------------------------------------ weights that round-trip

def _swin_run():
    c = one_step(load_config("configs/swin/textures.py"))
    c.model.kwargs.update(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    c.data.pp.size = 32
    c.data.source_kwargs.per_image = 4
    return c, jnp.asarray(np.random.default_rng(0).random((2, 32, 32, 1), np.float32))


def _maxim_run():
    c = one_step(load_config("configs/maxim/denoise.py"))
    c.model.kwargs.features = 8
    c.data.source_kwargs.patch = 32
    return c, jnp.asarray(np.random.default_rng(0).random((1, 32, 32, 3), np.float32))


def _uoe_run():
    c = one_step(load_config("configs/uoe/lm_pydoc.py"))
    c.data.source_kwargs.seq_len = 16
    return c, jnp.asarray(np.random.default_rng(0).integers(0, 128, (2, 16)), jnp.int32)


# Compiling a train step costs 30 s to minutes on 2 cores (MAXIM's the most), so only the Swin run is in the
# default suite; the MAXIM and UoE runs are slow tests, and cheap checks below round-trip the same configs'
# settings without training.
@pytest.mark.parametrize("make_run", [_swin_run, pytest.param(_maxim_run, marks=pytest.mark.slow),
                                      pytest.param(_uoe_run, marks=pytest.mark.slow)], ids=["swin", "maxim", "uoe"])
@pytest.mark.usefixtures("fast_compile")  # a test of the weights file, not of XLA's optimiser (tests/conftest.py)
def test_training_run_weights_load_back_from_the_file_alone(tmp_path, make_run):
    from flaxzoo.train.loop import train

    config, x = make_run()
    state = train(config, str(tmp_path))
    trained = state.model()
    trained.eval()
    weights = tmp_path / "model.safetensors"
    meta = native_metadata(weights)
    assert meta["model"] == config.model.name
    for key, value in config.model.kwargs.items():  # every setting differing from the preset is recorded
        if key in meta["kwargs"]:
            assert meta["kwargs"][key] == value and type(meta["kwargs"][key]) is type(value), key
    forward = nnx.jit(lambda m, x: m(x))
    for loaded in (flaxzoo.load_pretrained(str(weights)), flaxzoo.load_pretrained(tmp_path)):  # file or workdir
        assert_same_params(loaded, trained)
        out, ref = forward(loaded, x), forward(trained, x)
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), out, ref)
    # Permissions as any other file of the run (the umask's), not mkstemp's 0600.
    assert stat.S_IMODE(os.stat(weights).st_mode) == stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode)


@pytest.mark.parametrize("make_run,recorded", [(_maxim_run, {"conv_init_scale": 0.5}), (_uoe_run, {"mode": "trained"})],
                         ids=["maxim", "uoe"])
def test_run_config_settings_round_trip(tmp_path, make_run, recorded):
    """What the training loop records for the MAXIM and UoE configs, without the cost of training."""
    config, _ = make_run()
    kw = dict(config.model.kwargs)
    model = flaxzoo.create_model(config.model.name, **kw)
    save_params(model, tmp_path / "model.safetensors", model_name=config.model.name, model_kwargs=kw)
    # (MAXIM's features=8 is the maxim_tiny preset's own value, so only conv_init_scale differs from the preset)
    assert native_metadata(tmp_path / "model.safetensors")["kwargs"] == recorded
    loaded = flaxzoo.load_pretrained(tmp_path)
    assert_same_params(loaded, model)
    if hasattr(model, "config"):
        assert loaded.config == model.config  # every MAXIM setting, not only the shapes
    else:
        assert loaded.blocks[0].mlp.mode == "trained"


def test_recorded_settings_keep_their_types_and_only_the_changed_ones(tmp_path):
    kw = dict(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2), num_classes=10, dtype=jnp.bfloat16)
    model = flaxzoo.create_model("swin_test_tiny", **kw)
    path = tmp_path / "w.safetensors"
    save_params(model, path, model_name="swin_test_tiny", model_kwargs=kw)
    stored = native_metadata(path)["kwargs"]
    assert "num_classes" not in stored  # equal to the preset's 10
    assert stored["depths"] == (1, 1) and isinstance(stored["depths"], tuple)
    assert stored["dtype"] == jnp.bfloat16
    loaded = flaxzoo.load_pretrained(path)
    assert_same_params(loaded, model)
    assert loaded.layers[0].blocks[0].attn.qkv.dtype == jnp.bfloat16  # the dtype came back too
    assert loaded.pretrained_cfg["input_size"] == (64, 64, 3) and loaded.pretrained_cfg["num_classes"] == 10
    # The name+path form still works and overrides the recorded settings.
    again = flaxzoo.load_pretrained("swin_test_tiny", path, dtype=None)
    assert_same_params(again, model)
    assert again.layers[0].blocks[0].attn.qkv.dtype is None


def test_unrecordable_setting_is_one_clear_error(tmp_path):
    model = flaxzoo.create_model("swin_uoe_test_tiny")
    with pytest.raises(TypeError, match="Cannot record the constructor setting model_kwargs.mlp_factory"):
        save_params(model, tmp_path / "w.safetensors", model_name="swin_uoe_test_tiny",
                    model_kwargs={"mlp_factory": lambda *a, **k: None})
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_weights_of_another_model_and_other_mistakes_are_clear_errors(tmp_path):
    path = tmp_path / "w.safetensors"
    save_params(flaxzoo.create_model("swin_test_tiny"), path, model_name="swin_test_tiny")
    with pytest.raises(ValueError, match="holds weights of 'swin_test_tiny', not 'swinv2_test_tiny'"):
        flaxzoo.load_pretrained("swinv2_test_tiny", path)
    with pytest.raises(FileNotFoundError, match="folder without model.safetensors"):
        (tmp_path / "empty_dir").mkdir()
        flaxzoo.load_pretrained(tmp_path / "empty_dir")
    unnamed = tmp_path / "unnamed.safetensors"
    save_params(flaxzoo.create_model("swin_test_tiny"), unnamed)
    with pytest.raises(ValueError, match="records no model name"):
        flaxzoo.load_pretrained(unnamed)
    golden = ROOT / "tests" / "golden" / "swin" / "v1_nonsquare.params.safetensors"  # timm layout
    with pytest.raises(ValueError, match="not a flaxzoo weights file"):
        flaxzoo.load_pretrained(golden)
    with pytest.raises(FileExistsError):
        save_params(flaxzoo.create_model("swin_test_tiny"), path, model_name="swin_test_tiny")


# ------------------------------------------------------------------ the timm API

RELEASED = {"swin_tiny_patch4_window7_224", "swinv2_base_window12to24_192to384", "maxim_s3_denoising_sidd",
            "maxim_s2_enhancement_fivek", "uoe_lra_listops"}


def test_list_models_pretrained_lists_only_names_with_released_weights():
    with_weights = flaxzoo.list_models(pretrained=True)
    assert RELEASED <= set(with_weights) < set(flaxzoo.list_models())
    assert not {"swin_test_tiny", "maxim_s3", "uoe_lm_tiny"} & set(with_weights)
    assert flaxzoo.list_models("maxim*", pretrained=True) == [n for n in with_weights if n.startswith("maxim")]
    assert len(flaxzoo.list_models("maxim*", pretrained=True)) == 11  # one per released checkpoint


def test_every_released_model_has_a_pretrained_cfg_with_its_source_and_licence():
    for name in flaxzoo.list_models(pretrained=True):
        cfg = flaxzoo.get_spec(name).pretrained_cfg
        assert cfg["url"].startswith("https://") and cfg["license"] and cfg["file"], name
        for key in ("input_size", "mean", "std", "crop_pct", "interpolation", "num_classes"):
            assert key in cfg, (name, key)
        if name.startswith("swin"):  # classifiers: timm's preprocessing in full
            assert None not in (cfg["input_size"], cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"])
            assert cfg["license"] == "MIT" and "SwinTransformer/storage" in cfg["url"]
        if name.startswith("maxim"):
            assert cfg["license"] == "Apache-2.0" and "storage.googleapis.com/gresearch/maxim/ckpt/" in cfg["url"]
    cfg = flaxzoo.get_spec("swin_base_patch4_window12_384").pretrained_cfg
    assert cfg["input_size"] == (384, 384, 3) and cfg["crop_pct"] == 1.0 and cfg["num_classes"] == 1000
    assert flaxzoo.get_spec("swinv2_large_window12_192").pretrained_cfg["num_classes"] == 21841


def test_pretrained_without_the_file_says_where_to_get_it_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAXZOO_CACHE", str(tmp_path / "cache"))
    expected = tmp_path / "cache" / "swin_tiny_patch4_window7_224.pth"
    with pytest.raises(FileNotFoundError) as e:
        flaxzoo.create_model("swin_tiny_patch4_window7_224", pretrained=True)
    msg = str(e.value)
    assert "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth" in msg
    assert str(expected) in msg and "never downloads" in msg
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cache" / "maxim_s3_denoising_sidd.npz")):
        flaxzoo.create_model("maxim_s3_denoising_sidd", pretrained=True)
    monkeypatch.delenv("FLAXZOO_CACHE")
    assert flaxzoo.cache_dir() == os.path.expanduser("~/.cache/flaxzoo")
    with pytest.raises(ValueError, match="'swin_test_tiny' has no released weights"):
        flaxzoo.create_model("swin_test_tiny", pretrained=True)


def test_pretrained_loads_from_the_cache_and_num_classes_resets_the_head(tmp_path, monkeypatch):
    from flaxzoo.models import registry

    # Pretend swin_test_tiny had released weights, in the cache under the spec's file name.
    spec = registry.get_spec("swin_test_tiny")
    weights = dict(url="https://example.invalid/w.safetensors", file="tiny.safetensors", license="MIT")
    monkeypatch.setitem(registry._REGISTRY, "swin_test_tiny",
                        registry.dataclasses.replace(spec, info={**spec.info, "weights": weights}))
    monkeypatch.setenv("FLAXZOO_CACHE", str(tmp_path))
    source = flaxzoo.create_model("swin_test_tiny", rngs=nnx.Rngs(7))
    save_params(source, tmp_path / "tiny.safetensors", model_name="swin_test_tiny")
    model = flaxzoo.create_model("swin_test_tiny", pretrained=True)
    assert_same_params(model, source)
    assert model.pretrained_cfg["url"] == weights["url"] and model.pretrained_cfg["input_size"] == (64, 64, 3)
    three = flaxzoo.create_model("swin_test_tiny", pretrained=True, num_classes=3)
    assert three.num_classes == 3 and three.head.fc.kernel.shape == (64, 3)
    kept = {k: v for k, v in params_of(source).items() if not k.startswith("head")}
    assert all(np.array_equal(params_of(three)[k], v) for k, v in kept.items())
    # checkpoint_path: any supported file, here a reference (timm-layout) golden checkpoint.
    golden = ROOT / "tests" / "golden" / "swin" / "v1_nonsquare.params.safetensors"
    kw = dict(img_size=(64, 96), window_size=4, embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4))
    ref = flaxzoo.create_model("swin_test_tiny", checkpoint_path=golden, num_classes=5, **kw)
    assert ref.num_classes == 5
    assert_same_params(ref, flaxzoo.load_pretrained("swin_test_tiny", golden, num_classes=5, **kw))


def test_timm_families_flaxzoo_does_not_implement_say_so():
    for name in ("swin_s3_tiny_224", "swinv2_cr_tiny_ns_224"):
        with pytest.raises(ValueError, match="flaxzoo does not implement"):
            flaxzoo.create_model(name)
    with pytest.raises(TypeError, match="not a classifier"):
        flaxzoo.create_model("maxim_tiny", num_classes=3)
    with pytest.raises(TypeError, match="no setting 'embed_dm' \\(did you mean 'embed_dim'\\?\\)"):
        flaxzoo.create_model("swin_test_tiny", embed_dm=8)


@pytest.mark.parametrize("name", ["swin_test_tiny", "swinv2_test_tiny"])
def test_features_only_gives_the_stage_maps_with_feature_info(name):
    kw = dict(img_size=32, embed_dim=8, depths=(1, 1, 1), num_heads=(1, 1, 2))
    full = flaxzoo.create_model(name, rngs=nnx.Rngs(3), **kw)
    backbone = flaxzoo.create_model(name, features_only=True, out_indices=(0, -1), rngs=nnx.Rngs(3), **kw)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 32, 48, 3)), jnp.float32)
    maps = backbone(x)
    assert [m.shape for m in maps] == [(2, 8, 12, 8), (2, 2, 3, 32)]
    ref = full.features(x)
    np.testing.assert_allclose(maps[0], ref[0], atol=1e-6)
    np.testing.assert_allclose(maps[1], ref[2], atol=1e-6)
    info = backbone.feature_info
    assert info.channels() == [8, 32] and info.reduction() == [4, 16]
    assert [f["module"] for f in info] == ["layers.0", "layers.2"] and info[1]["num_chs"] == 32
    assert flaxzoo.create_model(name, features_only=True, **kw).feature_info.reduction() == [4, 8, 16]
    with pytest.raises(ValueError, match="stage index in \\[-3, 2\\]"):
        flaxzoo.create_model(name, features_only=True, out_indices=(3,), **kw)


@pytest.mark.parametrize("name", ["maxim_tiny", "uoe_vit_test_tiny"])
def test_features_only_elsewhere_names_the_families_that_have_it(name):
    with pytest.raises(ValueError, match="not available for .*supported for Swin V1/V2"):
        flaxzoo.create_model(name, features_only=True)


def _classifiers():
    yield "swin_test_tiny", dict(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2)), \
        np.random.default_rng(0).normal(size=(2, 32, 32, 3)), 16
    yield "swinv2_test_tiny", dict(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2)), \
        np.random.default_rng(0).normal(size=(2, 32, 32, 3)), 16
    yield "uoe_vit_test_tiny", {}, np.random.default_rng(0).normal(size=(2, 32, 32, 3)), 32
    yield "uoe_lra_listops", dict(vocab_size=32, max_seq_len=16, dim=16, hidden_dim=32, head_hidden_dim=8), \
        np.random.default_rng(0).integers(0, 32, (2, 16)), 8


@pytest.mark.parametrize("name,kw,x,pre_dim", list(_classifiers()), ids=lambda v: v if isinstance(v, str) else "")
def test_forward_features_head_and_reset_classifier(name, kw, x, pre_dim):
    model = flaxzoo.create_model(name, **kw)
    x = jnp.asarray(x, jnp.float32 if x.dtype.kind == "f" else jnp.int32)
    logits = model(x)
    np.testing.assert_allclose(model.forward_head(model.forward_features(x)), logits, rtol=1e-6, atol=1e-6)
    assert logits.shape == (2, model.num_classes)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, pre_dim)
    before = {k: v for k, v in params_of(model).items() if "fc2" not in k and not k.startswith("head")}
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.num_classes == 3
    after = params_of(model)
    assert all(np.array_equal(after[k], v) for k, v in before.items())  # only the classifier changed
