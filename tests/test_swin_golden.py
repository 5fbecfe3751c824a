"""Parity with timm 1.0.31 on every case in tests/golden/swin/ (one test per `<case>.json`).

Each case: build the model from the reference constructor kwargs, convert the timm
safetensors, run the stored input, compare logits, final features, every stage output,
patch_embed and (V2) the CPB MLP tables at the case's suggested tolerance.
"""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import golden_cases
from flax import nnx

from flaxzoo.models import swin
from flaxzoo.models.convert.common import read_state_dict
from flaxzoo.models.convert.swin import convert

BUILDERS = {"SwinTransformer": swin.SwinTransformer, "SwinTransformerV2": swin.SwinTransformerV2}


def _concrete(leaf):
    """Abstract non-parameter state (dropout RNG keys/counters) -> a concrete placeholder."""
    if not isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.zeros(leaf.shape + (2,), jnp.uint32))
    return jnp.zeros(leaf.shape, leaf.dtype)


@functools.lru_cache(maxsize=None)
def _build(case_path):
    """Model from the reference kwargs with the case's weights. Built shape-only, then every
    parameter is assigned by the converter: random init on CPU costs ~1 s per distinct shape."""
    meta = json.loads(case_path.read_text())
    model = nnx.eval_shape(lambda: BUILDERS[meta["model_class"]](**meta["kwargs"], rngs=nnx.Rngs(0)))
    convert(model, read_state_dict(str(case_path).replace(".json", ".params.safetensors")))
    _, rest = nnx.split(model, nnx.Param, ...)[1:]
    nnx.update(model, jax.tree.map(_concrete, rest))
    io = dict(np.load(str(case_path).replace(".json", ".io.npz"), allow_pickle=False))
    return meta, model, io


@nnx.jit
def _outputs(model, x):
    stages = model.features(x)
    out = {"logits": model.head(model.norm(stages[-1])), "features": model.norm(stages[-1]),
           "patch_embed": model.patch_embed(x)}
    for i, s in enumerate(stages):
        out[f"stage_outputs_{i}"] = s.transpose(0, 3, 1, 2)  # goldens store stage maps NCHW
    if model.v2:
        for s, stage in enumerate(model.layers):
            for b, block in enumerate(stage.blocks):
                out[f"cpb_mlp_out_s{s}_b{b}"] = block.attn.cpb.table()[None]
    return out


@pytest.mark.parametrize("case", golden_cases("swin"))
def test_swin_golden(case):
    meta, model, io = _build(case)
    tol = meta["suggested_tolerance"]
    x = jnp.asarray(io["input"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    out = jax.device_get(_outputs(model, x))
    expected = [k for k in io if k != "input" and io[k].dtype == np.float32 and not k.startswith("relative_coords")]
    assert set(expected) <= set(out), f"outputs not produced: {set(expected) - set(out)}"
    errors = {}
    for key in expected:
        errors[key] = float(np.max(np.abs(out[key] - io[key])))
        np.testing.assert_allclose(out[key], io[key], atol=tol["atol"], rtol=tol["rtol"], err_msg=key)
    print(case.stem, "max abs err", max(errors.values()), errors)


V2_CASES = [c for c in golden_cases("swin") if json.loads(c.values[0].read_text())["model_class"].endswith("V2")]


@pytest.mark.parametrize("case", V2_CASES)
def test_swin_coords_table(case):
    """V2 only: the log-spaced CPB coordinate table equals timm's float32 buffer bit for bit."""
    meta, model, io = _build(case)
    from flaxzoo.layers.position import log_spaced_coords

    for s, stage in enumerate(model.layers):
        attn = stage.blocks[0].attn
        table = log_spaced_coords(attn.cpb.window, attn.cpb.pretrained_window)
        np.testing.assert_array_equal(table[None], io[f"relative_coords_table_s{s}"])


@pytest.mark.parametrize("case", golden_cases("swin"))
def test_swin_golden_fp64(case):
    """float64 port against timm's float64 run, at the case's fp64 tolerance."""
    meta, model, io = _build(case)
    tol = meta["suggested_tolerance_fp64"]
    with jax.enable_x64(True):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        model64 = nnx.merge(graphdef, params, rest)
        x = jnp.asarray(io["input"].transpose(0, 2, 3, 1), jnp.float64)

        @nnx.jit
        def run(m, x):
            feats = m.forward_features(x)
            return m.head(feats), feats

        logits, feats = jax.device_get(run(model64, x))
    assert logits.dtype == np.float64
    np.testing.assert_allclose(logits, io["logits_fp64"], atol=tol["atol"], rtol=tol["rtol"])
    np.testing.assert_allclose(feats, io["features_fp64"], atol=tol["atol"], rtol=tol["rtol"])
    print(case.stem, "fp64 max abs err", float(np.max(np.abs(logits - io["logits_fp64"]))),
          float(np.max(np.abs(feats - io["features_fp64"]))))
