"""MAXIM structure: exact parameter counts, official key coverage, converter errors, presets."""
import json
import pathlib

import numpy as np
import pytest
import flaxzoo
from flaxzoo.models.convert.common import model_param_shapes, read_state_dict
from flaxzoo.models.convert.maxim import PREFIX, convert, official_key_map
from flaxzoo.models.maxim import MAXIM

GOLDEN = pathlib.Path(__file__).parent / "golden" / "maxim"
OFFICIAL = json.loads((GOLDEN / "official_keys.json").read_text())


@pytest.fixture(scope="module")
def full_models():
    # Eager build with host-side init: ~2-5 s each and ~90 MB, no compilation (see BENCHMARKS).
    return {v: flaxzoo.create_model(f"maxim_{v}") for v in ("s3", "s2")}


@pytest.mark.parametrize("variant,count", [("s3", 22_212_795), ("s2", 14_176_178)])
def test_exact_counts_and_every_official_key(full_models, variant, count):
    model = full_models[variant]
    shapes = model_param_shapes(model)
    assert sum(int(np.prod(s)) for s in shapes.values()) == count
    official = OFFICIAL["variants"][f"{variant[0].upper()}-{variant[1]}"]
    assert official["num_params"] == count
    ours = {k: shape for k, (_, shape) in official_key_map(model).items()}
    assert ours == {k: tuple(v) for k, v in official["keys"].items()}


def test_upsample_ratio_numbering_is_numeric_call_order():
    model = flaxzoo.create_model("maxim_tiny_s3")
    key_map = official_key_map(model)
    # UpSampleRatio_10 is stage 0's second decoder resize (not the string-sorted 3rd module).
    assert key_map[PREFIX + "UpSampleRatio_10/Conv_0/kernel"][0] == "stages.0.decoder_resize.1.conv.kernel"
    assert key_map[PREFIX + "UpSampleRatio_18/Conv_0/kernel"][0] == "stages.1.cross_resize.0.conv.kernel"
    assert key_map[PREFIX + "stage_1_encoder_block_0/channel_attention_block_11/conv1/kernel"][0] == \
        "stages.1.encoder_block.0.rcab.1.conv1.kernel"


@pytest.fixture(scope="module")
def tiny_checkpoint():
    return read_state_dict(GOLDEN / "s3_tiny.params.npz")


def test_converter_ignores_non_parameter_entries(tiny_checkpoint):
    model = flaxzoo.create_model("maxim_tiny_s3")
    sd = dict(tiny_checkpoint)
    sd["opt/state/param_states/stage_0_input_conv_0/kernel/grad_ema"] = np.zeros((3,))  # optimizer-state decoy
    sd["opt/state/step"] = np.array(5)
    convert(model, sd)
    key = PREFIX + "stage_2_output_conv_1/kernel"
    np.testing.assert_array_equal(np.asarray(model.stages[2].output_conv[1].kernel[...]), sd[key])


def test_converter_reports_missing_and_misshaped_keys(tiny_checkpoint):
    model = flaxzoo.create_model("maxim_tiny_s3")
    sd = dict(tiny_checkpoint)
    del sd[PREFIX + "UpSampleRatio_7/Conv_0/bias"]
    sd[PREFIX + "stage_0_input_conv_0/kernel"] = np.zeros((3, 3, 3, 9), np.float32)
    sd[PREFIX + "stage_9_extra/kernel"] = np.zeros((1,), np.float32)
    with pytest.raises(ValueError) as err:
        convert(model, sd)
    msg = str(err.value)
    assert "UpSampleRatio_7/Conv_0/bias" in msg and "Missing" in msg
    assert "stage_0_input_conv_0/kernel" in msg and "Shape mismatch" in msg
    assert "stage_9_extra/kernel" in msg


def test_converter_rejects_a_file_without_official_keys():
    with pytest.raises(ValueError, match="opt/target"):
        convert(flaxzoo.create_model("maxim_tiny_s3"), {"stages.0.input_conv.0.kernel": np.zeros(1)})


def test_presets():
    names = flaxzoo.list_models("maxim_*")
    for v in ("s1", "s2", "s3", "m1", "m2", "m3"):
        assert f"maxim_{v}" in names
    released = [n for n in names if flaxzoo.get_spec(n).info.get("checkpoint")]
    assert len(released) == 11
    spec = flaxzoo.get_spec("maxim_s3_denoising_sidd")
    assert spec.info["published"]["SIDD"] == {"psnr": 39.96, "ssim": 0.960}
    assert spec.kwargs["num_stages"] == 3 and spec.kwargs["num_supervision_scales"] == 3
    assert flaxzoo.get_spec("maxim_s2_dehazing_sots_indoor").kwargs["num_stages"] == 2


@pytest.mark.parametrize("variant", ["S-1", "S-2", "S-3", "M-1", "M-2", "M-3"])
def test_variant_presets_equal_the_official_configs(variant):
    official = OFFICIAL["variants"][variant]["model_kwargs"]
    ours = flaxzoo.get_spec(f"maxim_{variant.lower().replace('-', '')}").kwargs
    full = {**{k: v.default for k, v in __import__("inspect").signature(MAXIM.__init__).parameters.items()
               if k in official}, **ours}
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in full.items() if k in official} == official
    assert flaxzoo.get_spec(f"maxim_{variant.lower().replace('-', '')}").info["num_params"] == \
        OFFICIAL["variants"][variant]["num_params"]


def test_every_official_field_is_a_constructor_field():
    import inspect
    fields = set(inspect.signature(MAXIM.__init__).parameters)
    official = json.loads((GOLDEN / "s3_tiny.json").read_text())["model_kwargs"]
    assert set(official) <= fields


def test_size_multiple_and_clear_error():
    assert flaxzoo.create_model("maxim_tiny").size_multiple == (16, 16)
    assert MAXIM(features=4, num_stages=1, num_groups=1).size_multiple == (64, 64)  # released block/grid sizes
    model = flaxzoo.create_model("maxim_tiny")
    with pytest.raises(ValueError, match="multiple of 16x16"):
        model(np.zeros((1, 40, 48, 3), np.float32))


def test_conv_init_scale_scales_only_conv_kernels():
    import numpy as np
    from flax import nnx

    import flaxzoo

    base = flaxzoo.create_model("maxim_tiny", rngs=nnx.Rngs(0))
    scaled = flaxzoo.create_model("maxim_tiny", rngs=nnx.Rngs(0), conv_init_scale=0.5)
    a, b = base.stages[0].input_conv[0], scaled.stages[0].input_conv[0]
    np.testing.assert_allclose(b.kernel[...], 0.5 * np.asarray(a.kernel[...]), rtol=1e-6)
    pa = dict(nnx.to_flat_state(nnx.state(base, nnx.Param)))
    pb = dict(nnx.to_flat_state(nnx.state(scaled, nnx.Param)))
    dense = [k for k in pa if "kernel" in k and np.asarray(pa[k].get_value()).ndim == 2]
    assert dense and all(np.array_equal(pa[k].get_value(), pb[k].get_value()) for k in dense)
