"""MAXIM parity with google-research/maxim: every golden case, every stage and scale."""
import json

import jax
import numpy as np
import pytest
from conftest import golden_cases
from flax import nnx

from flaxzoo.models.convert.common import read_state_dict
from flaxzoo.models.convert.maxim import convert
from flaxzoo.models.maxim import MAXIM


@pytest.mark.parametrize("case", golden_cases("maxim"))
def test_golden_case(case):
    meta = json.loads(case.read_text())
    model = MAXIM(**meta["model_kwargs"])
    convert(model, read_state_dict(case.with_name(f"{case.stem}.params.npz")))
    io = np.load(case.with_name(f"{case.stem}.io.npz"))
    graphdef, state = nnx.split(model)
    outputs = jax.jit(lambda st, x: nnx.merge(graphdef, st)(x))(state, io["input"])
    expected = sorted(k for k in io.files if k.startswith("output_s"))
    got = {f"output_s{s}_{k}": np.asarray(o) for s, stage in enumerate(outputs) for k, o in enumerate(stage)}
    assert sorted(got) == expected  # same number of stages and scales, nothing skipped
    tol = meta["suggested_tolerance"]
    for key in expected:
        np.testing.assert_allclose(got[key], io[key], atol=tol["atol"], rtol=tol["rtol"], err_msg=f"{case.stem} {key}")
