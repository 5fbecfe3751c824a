"""Sharding rules, mesh errors, the shared train step, checkpoint IO and key checking."""
import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from flaxzoo.layers import Mlp
from flaxzoo.models.convert.common import (assign_params, native_model_name, read_state_dict, save_params)
from flaxzoo.train.sharding import batch_sharding, logical_to_spec, make_mesh, shard_model
from flaxzoo.train.step import init_train_state, make_train_step


def test_eight_cpu_devices_available():
    assert jax.device_count() == 8


def test_make_mesh_shapes_and_errors():
    mesh = make_mesh({"data": -1, "model": 2})
    assert dict(mesh.shape) == {"data": 4, "fsdp": 1, "model": 2}
    with pytest.raises(ValueError, match="needs 6 devices"):
        make_mesh({"data": 3, "model": 2})
    with pytest.raises(ValueError, match="not a multiple"):
        make_mesh({"data": -1, "model": 3})
    with pytest.raises(ValueError, match="Unknown mesh axes"):
        make_mesh({"tensor": 2})


def test_logical_rules():
    mesh = make_mesh({"data": 2, "fsdp": 2, "model": 2})
    assert logical_to_spec(("embed", "mlp"), mesh=mesh) == P("fsdp", "model")
    assert logical_to_spec(("experts", "embed", "mlp"), mesh=mesh) == P("model", "fsdp", None)  # model used once
    assert batch_sharding(mesh, 3).spec == P(("data", "fsdp"), None, None)
    small = make_mesh({"data": 8})
    assert logical_to_spec(("embed", "mlp"), mesh=small) == P(None, None)  # size-1 axes dropped


def test_sharded_model_equals_unsharded():
    m = Mlp(16, 64, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 16))
    expected = np.asarray(m(x))
    mesh = make_mesh({"data": 2, "fsdp": 2, "model": 2})
    shard_model(m, mesh)
    assert m.fc1.kernel[...].sharding.spec == P("fsdp", "model")
    with jax.set_mesh(mesh):
        got = jax.jit(lambda m, x: m(x))(m, jax.device_put(x, batch_sharding(mesh, 2)))
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_train_step_learns_and_advances_rng():
    model = Mlp(4, 64, 1, dropout=0.1, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (128, 4))
    y = x[:, :1] * 2.0 - x[:, 1:2]

    def loss_fn(model, batch, rng):
        err = jnp.mean((model(batch[0]) - batch[1]) ** 2)
        return err, {"mse": err}

    state = init_train_state(model, optax.adam(3e-3))
    step = make_train_step(loss_fn)
    first = None
    for i in range(150):
        state, metrics = step(state, (x, y), jax.random.key(i))
        first = float(metrics["loss"]) if first is None else first
    assert int(state.step) == 150
    assert float(metrics["loss"]) < 0.2 * first
    trained = state.model()
    trained.eval()
    assert float(jnp.mean((trained(x) - y) ** 2)) < 0.2 * first


def test_save_and_load_native_roundtrip(tmp_path):
    m = Mlp(4, 8, rngs=nnx.Rngs(0))
    path = tmp_path / "w.safetensors"
    save_params(m, path, model_name="mlp")
    assert native_model_name(path) == "mlp"
    with pytest.raises(FileExistsError):
        save_params(m, path)
    other = Mlp(4, 8, rngs=nnx.Rngs(1))
    assign_params(other, read_state_dict(path))
    np.testing.assert_array_equal(other.fc1.kernel[...], m.fc1.kernel[...])


def test_assign_params_reports_every_problem():
    m = Mlp(4, 8, rngs=nnx.Rngs(0))
    bad = {"fc1.kernel": np.zeros((4, 9)), "fc1.bias": np.zeros(8), "fc2.kernel": np.zeros((8, 4)),
           "extra.weight": np.zeros(3)}
    with pytest.raises(ValueError) as e:
        assign_params(m, bad)
    msg = str(e.value)
    assert "fc2.bias" in msg and "extra.weight" in msg and "fc1.kernel: model (4, 8)" in msg


def test_read_state_dict_refuses_pickles_and_unknown_formats(tmp_path):
    obj = tmp_path / "x.npz"
    np.savez(obj, a=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError):
        read_state_dict(obj)
    with pytest.raises(ValueError, match="Unsupported checkpoint format"):
        (tmp_path / "x.pkl").write_bytes(b"")
        read_state_dict(tmp_path / "x.pkl")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.npz")
