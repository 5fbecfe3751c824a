"""SNMF solver parity: every tests/golden/snmf/<case>.json is one test (float32 and float64).

Each case gives A and Y0; we run `iters` iterations and compare Z_1, Y_1 (after one), Z_T, Y_T
(after the last), the loss trajectory and the best iterate, as max|ours - ref| / max|ref| per
array, at the case's own suggested tolerance.
"""
import json

import jax
import numpy as np
import pytest

from conftest import golden_cases
from flaxzoo.interpret import snmf

CASES = golden_cases("snmf", kind="snmf_solver")


def _relative_max(ours, ref) -> float:
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(ours, np.float64) - ref)) / np.max(np.abs(ref)))


def _check_case(path, dtype):
    meta = json.loads(path.read_text())
    ref = np.load(path.with_suffix(".npz"))
    tol = meta["suggested_tolerance"][np.dtype(dtype).name]["rtol_of_max"]
    d, n, k = (meta["shapes"][key] for key in ("d", "n", "k"))
    A, Y0 = ref["A"].astype(dtype), ref["Y0"].astype(dtype)
    assert A.shape == (d, n) and Y0.shape == (k, n)
    assert snmf.kept_per_feature(meta["sparsity"], d) == meta["kept_per_feature"]
    iters = meta["iters"]
    fit = lambda n_iter: snmf.fit(A, k, sparsity=meta["sparsity"], max_iter=n_iter,  # noqa: E731
                                  patience=n_iter + 1, Y0=Y0, reg=meta["reg"],
                                  eps_denominator=meta["eps_denominator"], eps_norm=meta["eps_norm"])
    first, full = fit(1), fit(iters)
    errors = {"Z_1": _relative_max(first.Z_last, ref["Z_1"]), "Y_1": _relative_max(first.Y_last, ref["Y_1"]),
              "Z_T": _relative_max(full.Z_last, ref["Z_T"]), "Y_T": _relative_max(full.Y_last, ref["Y_T"]),
              "loss": _relative_max(full.losses, ref["loss"]),
              "Z_best": _relative_max(full.Z, ref["Z_best"]), "Y_best": _relative_max(full.Y, ref["Y_best"])}
    assert full.n_iter == iters and full.losses.shape == ref["loss"].shape
    assert full.best_iter == meta["best_iter"]
    assert np.all(full.Y_last >= 0)
    bad = {name: err for name, err in errors.items() if not err <= tol}
    assert not bad, f"{path.stem} ({np.dtype(dtype).name}): over {tol}: {bad}"


@pytest.mark.parametrize("path", CASES)
def test_snmf_golden_float32(path):
    _check_case(path, np.float32)


@pytest.mark.parametrize("path", CASES)
def test_snmf_golden_float64(path):
    with jax.enable_x64(True):
        _check_case(path, np.float64)
