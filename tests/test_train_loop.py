"""The training loop end to end: real (offline) data, a sharded mesh, checkpoints, exact resume."""
import json
import pathlib
import shutil

import numpy as np
import pytest

from flaxzoo import load_pretrained


def tiny_config(total_steps):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "configs" / "swin" / "textures.py"
    spec = importlib.util.spec_from_file_location("textures_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.kwargs.img_size = 32
    c.model.kwargs.embed_dim = 8
    c.model.kwargs.depths = (1, 1)
    c.model.kwargs.num_heads = (1, 2)
    c.data.pp.size = 32
    c.data.source_kwargs.per_image = 16
    c.batch_size = 8
    c.total_steps = total_steps
    c.log_every = 1
    c.eval_every = 0
    c.checkpoint_every = 2
    c.mesh.data = 4
    c.mesh.model = 2
    return c


def multihost_config():
    """Parameters sharded over all 8 devices (fsdp), so across processes in the two-process run."""
    c = tiny_config(3)
    c.mesh.data, c.mesh.fsdp, c.mesh.model = 1, 8, 1
    c.checkpoint_every = 3
    return c


def read_metrics(workdir):
    return [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]


# Slow (about 30 s): exact resume is also checked in the default suite by tests/test_kill.py (SIGKILL, bit-identical)
# and tests/test_train_runs.py (SIGTERM).
@pytest.mark.slow
def test_train_checkpoint_and_exact_resume(tmp_path):
    from flaxzoo.train.loop import train

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny_config(4), str(straight))
    # Pretend the run was killed after its step-2 checkpoint: drop what came later, then rerun.
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "4")
    (resumed / "done.json").unlink()
    train(tiny_config(4), str(resumed))  # picks up at step 2: same batches, same weights
    assert [m["step"] for m in read_metrics(resumed)] == [1, 2, 3, 4]  # replayed steps replaced their rows
    a = [m["train/loss"] for m in read_metrics(straight) if "train/loss" in m]
    b = [m["train/loss"] for m in read_metrics(resumed) if "train/loss" in m]
    assert len(a) == 4 and len(b) == 4
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert json.loads((resumed / "done.json").read_text())["step"] == 4
    c = tiny_config(4)
    model = load_pretrained(c.model.name, str(resumed / "model.safetensors"), **c.model.kwargs)
    assert model.head.fc.kernel[...].shape[-1] == 10


def test_config_typo_is_an_error():
    c = tiny_config(1)
    c.lock()  # scripts/train.py loads configs with lock_config=True, so --config.total_stpes fails too
    with pytest.raises(AttributeError, match="total_stpes"):
        c.total_stpes = 3


# Slow (about 50 s: two processes compile the same run twice); `make test-all` runs it.
@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """jax.distributed on CPU: 2 processes x 4 devices give the same losses as 1 process x 8 devices
    (each process reads half of every global batch), and the sharded weights are saved whole."""
    import socket
    import subprocess
    import sys

    from flaxzoo.train.loop import train

    single = tmp_path / "single"
    train(multihost_config(), str(single))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    multi = tmp_path / "multi"
    worker = pathlib.Path(__file__).parent / "multihost_worker.py"
    procs = [subprocess.Popen([sys.executable, str(worker), str(i), port, str(multi)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    a = [m["train/loss"] for m in read_metrics(single) if "train/loss" in m]
    b = [m["train/loss"] for m in read_metrics(multi) if "train/loss" in m]
    assert len(a) == len(b) == 3
    np.testing.assert_allclose(a, b, rtol=1e-5)
    c = multihost_config()
    one = load_pretrained(c.model.name, str(single / "model.safetensors"), **c.model.kwargs)
    two = load_pretrained(c.model.name, str(multi / "model.safetensors"), **c.model.kwargs)
    np.testing.assert_allclose(two.head.fc.kernel[...], one.head.fc.kernel[...], atol=1e-6)
