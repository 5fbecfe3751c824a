"""Checkpointer: verified saves, fallback past bad checkpoints, rotation with a best one, other meshes."""
import hashlib
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from flaxzoo.train.checkpoint import CHECKSUMS, Checkpointer, CheckpointError
from flaxzoo.train.checksum import array_checksums


def mesh(shape):
    return jax.make_mesh(shape, ("data", "fsdp", "model"), axis_types=(AxisType.Auto,) * 3)


def arrays(value, m=None):
    """A small train-state-like dict: a sharded matrix, a bf16 vector, an int step, an RNG key."""
    m = m or mesh((8, 1, 1))
    w = (jnp.arange(16 * 4, dtype=jnp.float32).reshape(16, 4) + value) / 7
    spec = P("data", None) if m.shape["fsdp"] == 1 else P(("data", "fsdp"), "model")
    return {"params": {"w": jax.device_put(w, NamedSharding(m, spec)),
                       "b": jax.device_put(jnp.full((4,), value, jnp.bfloat16), NamedSharding(m, P()))},
            "opt_state": {"mu": jax.device_put(w * 0.5, NamedSharding(m, spec))},
            "step": jax.device_put(jnp.int32(value), NamedSharding(m, P())),
            "key": jax.device_put(jax.random.key(value), NamedSharding(m, P()))}


def assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def save_steps(workdir, steps, **kwargs):
    ckpt = Checkpointer(str(workdir), **kwargs)
    for s in steps:
        ckpt.save(s, arrays(s), {"next_index": s * 10})
    ckpt.close()
    return workdir / "checkpoints"


def snapshot(folder):
    """Every file under folder with a hash of its bytes (to show nothing was touched)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def largest_array_file(step_dir):
    """The biggest data file of orbax's (OCDBT) array store, the one holding the array bytes."""
    return max((step_dir / "state" / "d").iterdir(), key=lambda p: p.stat().st_size)


def test_checksums_are_mesh_independent_and_see_every_change():
    a, b = arrays(3), arrays(3, mesh((2, 2, 2)))
    assert array_checksums(a) == array_checksums(b)  # same values, other shardings
    swapped = dict(a, params=dict(a["params"], w=a["params"]["w"][::-1]))  # same values, other order
    bumped = dict(a, step=a["step"] + 1)
    for changed in (swapped, bumped):
        diff = [k for k in array_checksums(a) if array_checksums(a)[k] != array_checksums(changed)[k]]
        assert len(diff) == 1


def test_restore_into_another_mesh(tmp_path):
    save_steps(tmp_path, [2])
    step, restored, data = Checkpointer(str(tmp_path)).restore_latest(arrays(0, mesh((2, 2, 2))))
    assert step == 2 and data == {"next_index": 20}
    assert restored["params"]["w"].sharding.spec == P(("data", "fsdp"), "model")
    assert_same(restored, arrays(2))


def test_no_checkpoint_is_none(tmp_path):
    assert Checkpointer(str(tmp_path)).restore_latest(arrays(0)) is None


def flip_bytes(step_dir):
    path = largest_array_file(step_dir)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(step_dir):
    path = largest_array_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def remove_checksums(step_dir):
    (step_dir / CHECKSUMS).unlink()


def other_values(step_dir):
    """A readable checkpoint whose arrays are not the ones saved: orbax alone cannot tell."""
    shutil.rmtree(step_dir / "state")
    shutil.copytree(step_dir.parent / "2" / "state", step_dir / "state")


def other_data_state(step_dir):
    shutil.rmtree(step_dir / "data")
    shutil.copytree(step_dir.parent / "2" / "data", step_dir / "data")


@pytest.mark.parametrize("damage, problem", [
    (flip_bytes, "(checksum mismatch|cannot be read)"),
    (truncate, "cannot be read"),
    (remove_checksums, "no valid flaxzoo_checksums.json"),
    (other_values, r"checksum mismatch in 5 array\(s\), first \['key'\]"),
    (other_data_state, "checksum mismatch in the data iterator state"),
])
def test_bad_newest_checkpoint_falls_back_in_one_line(tmp_path, capsys, damage, problem):
    folder = save_steps(tmp_path, [2, 3])
    damage(folder / "3")
    capsys.readouterr()
    step, restored, data = Checkpointer(str(tmp_path)).restore_latest(arrays(0))
    assert step == 2 and data == {"next_index": 20}
    assert_same(restored, arrays(2))
    lines = [l for l in capsys.readouterr().out.splitlines() if "unusable" in l]
    assert len(lines) == 1 and lines[0].startswith("Checkpoint 3 in ")
    assert re.search(problem, lines[0]), lines[0]
    # Set aside, not deleted; the resumed run can write step 3 again.
    assert (tmp_path / "rejected_checkpoints" / "3").is_dir() and not (folder / "3").exists()
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(3, arrays(3), {"next_index": 30})
    ckpt.close()
    assert Checkpointer(str(tmp_path)).restore_latest(arrays(0))[0] == 3


def test_no_good_checkpoint_is_a_clear_error_and_touches_nothing(tmp_path):
    folder = save_steps(tmp_path, [2, 3])
    truncate(folder / "3")
    remove_checksums(folder / "2")
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match=r"None of the 2 checkpoints .*step 3: cannot be read.*step 2: no valid "
                                              r".*Nothing was changed or deleted"):
        Checkpointer(str(tmp_path)).restore_latest(arrays(0))
    assert snapshot(tmp_path) == before


def test_checkpoint_of_another_model_or_optimizer_is_refused_not_loaded(tmp_path):
    """A sound checkpoint with other arrays (e.g. resumed with another optimizer chain) is a config problem, not
    damage: one clear error, no fallback, nothing moved."""
    save_steps(tmp_path, [2, 3])
    before = snapshot(tmp_path)
    other = arrays(0)
    other["params"]["w"] = jnp.zeros((16, 5))
    with pytest.raises(CheckpointError, match=r"Checkpoint 3 .* does not fit this run: array \['params'\]\['w'\] is "
                                              r"\[\[16, 4\], 'float32'\] in the checkpoint but \[\[16, 5\], 'float32'\] "
                                              r"in this run.*Nothing was changed"):
        Checkpointer(str(tmp_path)).restore_latest(other)
    other = arrays(0)
    other["opt_state"] = {"clip": {}, "adam": other["opt_state"]}
    with pytest.raises(CheckpointError, match=r"does not fit this run: 1 of its arrays are not in this run \(e.g. "
                                              r"\['opt_state'\]\['mu'\]\) and 1 of this run's are not in it"):
        Checkpointer(str(tmp_path)).restore_latest(other)
    assert snapshot(tmp_path) == before


def test_rotation_keeps_newest_and_best(tmp_path):
    ckpt = Checkpointer(str(tmp_path), keep=2, best_metric="eval/psnr", best_mode="max")
    psnr = {1: 20.0, 2: 31.0, 3: 25.0, 4: None, 5: 24.0, 6: None}  # None: saved without eval metrics
    for s, value in psnr.items():
        ckpt.save(s, arrays(s), {}, metrics=None if value is None else {"eval/psnr": value, "eval/loss": 1.0})
    ckpt.wait()
    assert ckpt.best_step() == 2
    ckpt.close()
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 5, 6]
    # The best survives a restart too (its metrics are in its checksum file).
    ckpt = Checkpointer(str(tmp_path), keep=1, best_metric="eval/loss", best_mode="min")
    ckpt.save(7, arrays(7), {}, metrics={"eval/loss": 2.0})
    ckpt.close()
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 7]


def test_rotation_never_deletes_the_last_finished_checkpoint(tmp_path):
    """keep=1: while step 2 is still being written, step 1 is the only good one and must stay."""
    ckpt = Checkpointer(str(tmp_path), keep=1)
    ckpt.save(1, arrays(1), {})
    ckpt.save(2, arrays(2), {})
    assert os.path.isdir(tmp_path / "checkpoints" / "1")  # step 2 not verified yet (no wait())
    ckpt.wait()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    ckpt.close()


@pytest.mark.parametrize("kwargs, message", [
    (dict(keep=0), "keep must be a positive"),
    (dict(best_mode="maximum"), "best_mode must be 'max' or 'min'"),
])
def test_bad_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Checkpointer(str(tmp_path), **kwargs)


def test_non_finite_weights_are_never_saved(tmp_path):
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(1, arrays(1), {})
    bad = arrays(2)
    bad["opt_state"]["mu"] = bad["opt_state"]["mu"].at[3, 1].set(jnp.nan)
    with pytest.raises(CheckpointError, match=r"Refusing to save step 2: \['opt_state'\]\['mu'\] holds NaN or inf"):
        ckpt.save(2, bad, {})
    ckpt.save(3, dict(arrays(3), rest={"mask": jnp.array([0.0, -jnp.inf])}), {})  # module buffers may be inf
    ckpt.close()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "3"]
