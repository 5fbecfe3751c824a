"""Sharding changes nothing but speed: each family's smoke config trains 3 steps on 8 CPU devices with
meshes (data, fsdp, model) = (8,1,1), (2,2,2), (1,1,8) and gives the losses of a 1-device run (built
in-process on the first device, run once per family and shared by its three cases)."""
import functools
import importlib.util
import json
import pathlib

import jax
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("fast_compile")  # tests of the loop, not of XLA (tests/conftest.py)

CONFIGS = pathlib.Path(__file__).parents[1] / "configs"
MESHES = [(8, 1, 1), (2, 2, 2), (1, 1, 8)]
# The default suite must stay under 10 minutes on 2 cores: it runs one mesh, Swin on (2, 2, 2) (every axis
# sharded at once; UoE's expert sharding is held to one device by test_uoe.py::test_expert_sharded_equals_single_device);
# the other meshes, UoE's runs, and MAXIM (whose train step takes minutes to compile on a loaded 2-core CPU) run in
# the full suite (make test-all).
DEFAULT_CASES = {("swin", (2, 2, 2))}
CASES = [pytest.param(family, mesh, id=f"{family}-{'x'.join(map(str, mesh))}",
                      marks=() if (family, mesh) in DEFAULT_CASES else pytest.mark.slow)
         for family in ("swin", "uoe", "maxim") for mesh in MESHES]


def smoke_config(family: str, mesh=(1, 1, 1)):
    spec = importlib.util.spec_from_file_location(f"{family}_smoke", CONFIGS / family / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.total_steps = 3
    c.log_every = 1
    c.checkpoint_every = 3
    c.mesh.data, c.mesh.fsdp, c.mesh.model = mesh
    return c


def losses(workdir):
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in rows if "train/loss" in r]


@functools.cache
def one_device_losses(family: str, tmp: str):
    from flaxzoo.train.loop import train

    workdir = pathlib.Path(tmp) / f"{family}_1"
    train(smoke_config(family), str(workdir), devices=jax.devices()[:1])
    return tuple(losses(workdir))


@pytest.mark.parametrize("family, mesh", CASES)
def test_mesh_gives_one_device_losses(family, mesh, tmp_path_factory):
    from flaxzoo.train.loop import train

    reference = one_device_losses(family, str(tmp_path_factory.getbasetemp()))
    workdir = tmp_path_factory.mktemp(f"{family}_{'x'.join(map(str, mesh))}")
    train(smoke_config(family, mesh), str(workdir))
    got = losses(workdir)
    assert len(got) == len(reference) == 3
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference, rtol=2e-5, atol=2e-6)
