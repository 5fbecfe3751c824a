"""Real processes, really killed: SIGKILL during and between saves, damaged checkpoints on disk.

Every run is a separate `python -c` process running flaxzoo.train.loop.train on a tiny Swin
config (the same settings each time, so an uninterrupted run and a killed-and-resumed one must
give bit-identical weights). They share a persistent compilation cache, so only the first
compiles (with most XLA optimisations off, as they buy nothing at this size).
"""
import glob
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_checkpoint import flip_bytes, snapshot

ROOT = pathlib.Path(__file__).parents[1]
STEPS, EVERY = 6, 2  # checkpoints at 2, 4, 6 (all kept)

RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_kill import tiny_config
from flaxzoo.train.loop import train
train(tiny_config(mesh=tuple(map(int, sys.argv[2].split(",")))), sys.argv[1])
"""


def tiny_config(mesh=(8, 1, 1)):
    from flaxzoo.train.defaults import base_config

    c = base_config()
    c.model.name = "swin_test_tiny"
    c.model.kwargs.update(num_classes=10, img_size=32, in_chans=1, embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    c.task.name = "classify"
    c.data.train = c.data.eval = "offline:textures"
    c.data.preprocess = "classify"
    c.data.pp.size = 32
    c.data.source_kwargs.per_image = 16
    c.batch_size = 8
    c.total_steps = STEPS
    c.log_every = 1
    c.eval_every = 0
    c.checkpoint_every = EVERY
    c.keep_checkpoints = 3
    c.mesh.data, c.mesh.fsdp, c.mesh.model = mesh
    return c


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="8",
                XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
                JAX_DISABLE_MOST_OPTIMIZATIONS="1")  # compiles in half the time; every run uses the same setting


def start(workdir, env, mesh=(8, 1, 1)):
    log = open(f"{workdir}.log", "a")
    return subprocess.Popen([sys.executable, "-c", RUN.format(tests=str(ROOT / "tests")), str(workdir),
                             ",".join(map(str, mesh))], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def run(workdir, env, *, ok=True, mesh=(8, 1, 1)):
    proc = start(workdir, env, mesh)
    proc.wait(timeout=300)
    out = pathlib.Path(f"{workdir}.log").read_text()
    assert (proc.returncode == 0) == ok, out[-3000:]
    return out


def kill_when(workdir, env, condition):
    """Start a run and SIGKILL it the moment condition(workdir) holds (polled every 2 ms)."""
    proc = start(workdir, env)
    deadline = time.time() + 300
    while not condition(workdir):
        assert proc.poll() is None, "the run ended before it could be killed: " + \
            pathlib.Path(f"{workdir}.log").read_text()[-2000:]
        assert time.time() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return pathlib.Path(f"{workdir}.log").read_text()


def weights(workdir):
    from safetensors.numpy import load_file

    return load_file(str(workdir / "model.safetensors"))


def assert_bit_identical(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    assert json.loads((b / "done.json").read_text())["step"] == STEPS


def train_steps_logged(workdir):
    rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "train/loss" in r]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run."""
    workdir = tmp_path_factory.mktemp("kill") / "reference"
    run(workdir, env)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4", "6"]
    return workdir


def test_sigkill_during_and_between_saves_then_resume_is_bit_identical(reference, env, tmp_path):
    workdir = tmp_path / "run"
    # 1. Killed while orbax is still writing checkpoint 4 (its temporary folder exists).
    kill_when(workdir, env, lambda w: glob.glob(f"{w}/checkpoints/4.orbax-checkpoint-tmp*"))
    assert not (workdir / "checkpoints" / "4" / "flaxzoo_checksums.json").exists()
    # 2. Resumed from 2, then killed again right after checkpoint 4 is finished (between saves).
    out = kill_when(workdir, env, lambda w: os.path.exists(f"{w}/checkpoints/4/flaxzoo_checksums.json"))
    assert "Resumed from step 2" in out
    # 3. Resumed from 4 to the end: the same weights, bit for bit, and each step logged once.
    out = run(workdir, env)
    assert "Resumed from step 4" in out.split("Resumed from step 2")[-1]
    assert not glob.glob(f"{workdir}/checkpoints/*tmp*")  # the half-written save of the first kill is gone
    assert_bit_identical(reference, workdir)
    assert train_steps_logged(workdir) == list(range(1, STEPS + 1))


def damaged_copy(reference, workdir, steps, damage):
    shutil.copytree(reference, workdir, ignore=shutil.ignore_patterns("model.safetensors", "done.json"))
    for step in steps:
        damage(workdir / "checkpoints" / str(step))


# Slow: its parts are in the default suite (test_checkpoint.py: the fallback past a bad newest checkpoint, restoring
# into another mesh; the SIGKILL/resume test above: a killed run finishing bit-identically end to end).
@pytest.mark.slow
def test_corrupted_newest_checkpoint_falls_back_and_finishes_on_another_mesh(reference, env, tmp_path):
    """Checkpoint 6 damaged; the run resumes from 4 on mesh (2,2,2) instead of (8,1,1) and finishes."""
    workdir = tmp_path / "run"
    damaged_copy(reference, workdir, [6], flip_bytes)
    out = run(workdir, env, mesh=(2, 2, 2))
    reports = [l for l in out.splitlines() if "unusable" in l]
    assert len(reports) == 1 and reports[0].startswith(f"Checkpoint 6 in {workdir}/checkpoints is unusable: "), out
    assert "resumed from step 4" in reports[0] and "Resumed from step 4" in out
    assert (workdir / "rejected_checkpoints" / "6").is_dir()  # kept for inspection
    # The changed mesh is a config change: recorded beside config.json (left as it was) and printed.
    assert "mesh.data: 8 -> 2" in out and json.loads((workdir / "config.resume-1.json").read_text())["mesh"]["fsdp"] == 2
    assert (workdir / "config.json").read_text() == (reference / "config.json").read_text()
    # Another mesh sums in another order: the same weights to float tolerance, not bit for bit.
    ours, theirs = weights(workdir), weights(reference)
    assert ours.keys() == theirs.keys()
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert json.loads((workdir / "done.json").read_text())["step"] == STEPS


def test_no_readable_checkpoint_stops_with_a_clear_error_and_touches_nothing(reference, env, tmp_path):
    workdir = tmp_path / "run"

    def truncate(step_dir):
        for path in (step_dir / "state" / "d").iterdir():
            path.write_bytes(path.read_bytes()[:10])

    damaged_copy(reference, workdir, [2, 4, 6], truncate)
    before = snapshot(workdir)
    out = run(workdir, env, ok=False)
    # (orbax's asyncio threads may print "Event loop is closed" noise at exit, interleaved with the traceback)
    assert "CheckpointError" in out and "None of the 3 checkpoints in" in out, out[-3000:]
    assert "Nothing was changed or deleted" in out, out[-3000:]
    assert snapshot(workdir) == before


TWO_PROCESSES = """
import os, sys
os.environ.update(JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu")
os.environ.pop("XLA_FLAGS", None)
import jax
jax.distributed.initialize(coordinator_address="127.0.0.1:" + sys.argv[2], num_processes=2,
                           process_id=int(sys.argv[1]))
sys.path.insert(0, {tests!r})
from test_kill import tiny_config
from flaxzoo.train.loop import train
c = tiny_config()
c.mesh.data, c.mesh.fsdp = 2, 4  # parameters sharded across the two processes
train(c, sys.argv[3])
"""


def run_two_processes(workdir, env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    code = TWO_PROCESSES.format(tests=str(ROOT / "tests"))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i), port, str(workdir)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    return outs


@pytest.mark.slow
def test_two_processes_agree_to_fall_back_past_a_corrupted_checkpoint(env, tmp_path):
    """Both processes verify the same global checksums and take the same fallback."""
    reference, workdir = tmp_path / "reference", tmp_path / "run"
    run_two_processes(reference, env)
    damaged_copy(reference, workdir, [6], flip_bytes)
    outs = run_two_processes(workdir, env)
    assert all("Resumed from step 4" in out for out in outs), outs
    assert "is unusable" in outs[0] and "is unusable" not in outs[1]  # reported once, by process 0
    assert_bit_identical(reference, workdir)
