"""Per-family XLA compiler options (flaxzoo/compile_options.py): which programs get them, and the fallbacks."""
import jax
import numpy as np
import pytest
from flax import nnx

import flaxzoo
from flaxzoo import compile_options
from flaxzoo.eval.restore import Restorer
from flaxzoo.models.maxim import MAXIM
from flaxzoo.models.swin import SwinTransformer

YNN = "xla_cpu_experimental_ynn_fusion_type"
cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU ones")


@cpu_only
def test_maxim_compiles_without_ynnpack_fusions_and_others_keep_the_defaults(monkeypatch):
    monkeypatch.delenv(compile_options.ENV, raising=False)
    assert compile_options.options_for(MAXIM) == {YNN: ""}
    assert compile_options.options_for(flaxzoo.create_model("maxim_tiny"), "infer") == {YNN: ""}
    assert compile_options.options_for(MAXIM, "train") is None
    assert compile_options.options_for(SwinTransformer) is None
    assert compile_options.options_for(object()) is None
    monkeypatch.setenv(compile_options.ENV, "default")
    assert compile_options.options_for(MAXIM) is None


def test_an_option_this_xla_does_not_know_is_left_out_with_a_warning(monkeypatch):
    class Model:
        xla_options = {jax.default_backend(): {"infer": {"xla_no_such_option_anywhere": "1",
                                                         **MAXIM.xla_options["cpu"]["infer"]}}}

    monkeypatch.delenv(compile_options.ENV, raising=False)
    with pytest.warns(UserWarning, match="xla_no_such_option_anywhere"):
        options = compile_options.options_for(Model)
    assert "xla_no_such_option_anywhere" not in (options or {})
    with pytest.raises(ValueError, match="program must be"):
        compile_options.options_for(MAXIM, "eval")


@cpu_only
def test_restorer_program_has_the_options_and_the_same_output(monkeypatch):
    monkeypatch.delenv(compile_options.ENV, raising=False)
    model = flaxzoo.create_model("maxim_tiny")
    x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    restorer = Restorer(model)
    ours = restorer._apply.lower(restorer._graphdef, restorer._state, x).compile()
    assert "__ynn_fusion" not in ours.as_text()
    default = jax.jit(lambda s, x: nnx.merge(restorer._graphdef, s)(x)[-1][-1]).lower(restorer._state, x).compile()
    want = np.asarray(default(restorer._state, x))
    # float32 rounding of other fusions, at the output's scale (random weights: outputs far above 1)
    np.testing.assert_allclose(np.asarray(ours(restorer._state, x)), want,
                               atol=4e-6 * np.abs(want).max(), rtol=0)
    if "__ynn_fusion" not in default.as_text():
        pytest.skip("this jaxlib makes no YNNPACK fusions by default: the option changes nothing here")


def test_benchmark_tables_name_the_options():
    from flaxzoo.bench import report

    record = {"model": "maxim_s3", "batch": 1, "size": [256, 256], "dtype": "float32", "command": "c",
              "date": "2026-12-07",
              "machine": {"platform": "cpu", "cpu": "x", "cpu_cores": 2, "jax": "0.10.2"},
              "result": {"params": 1, "task": "restore", "compiler_options": {"infer": {YNN: ""}},
                         "infer": {"images_per_s": 0.3, "compile_s": 1.0, "median_s": 3.0},
                         "train": {"images_per_s": 0.1, "compile_s": 1.0, "median_s": 9.0}}}
    infer, train = report.point_rows([record])[2:]
    assert f"XLA options {{'{YNN}': ''}}" in infer and "XLA options" not in train
