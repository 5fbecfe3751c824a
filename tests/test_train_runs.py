"""Whole runs: SIGTERM saves and exits 0, the resumed run equals an uninterrupted one; a diverging run stops
with the step and what went non-finite, saving nothing after its last finite checkpoint; EMA, TensorBoard
and the whole-split eval through the loop."""
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from train_worker import smoke_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("fast_compile")  # tests of the loop, not of XLA (tests/conftest.py)

ROOT = pathlib.Path(__file__).parents[1]
WORKER = pathlib.Path(__file__).parent / "train_worker.py"


def rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def child_env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_NUM_CPU_DEVICES": "8"}


def test_sigterm_saves_exits_zero_and_resumes_like_an_uninterrupted_run(tmp_path):
    from flaxzoo import load_pretrained
    from flaxzoo.train.loop import train

    overrides = ["total_steps=40", "log_every=1", "checkpoint_every=100"]
    preempted = tmp_path / "preempted"
    child = subprocess.Popen([sys.executable, str(WORKER), "swin", str(preempted), *overrides], cwd=ROOT,
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = preempted / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and child.poll() is None:
        if metrics.exists() and any(json.loads(l)["step"] >= 3 for l in metrics.read_text().splitlines() if l):
            child.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    out = child.communicate(timeout=240)[0]
    assert child.returncode == 0, out[-3000:]
    assert "Preempted: saved a checkpoint at step" in out, out[-3000:]
    stopped = int(out.split("Preempted: saved a checkpoint at step ")[1].split()[0])
    assert 3 <= stopped < 40
    assert not (preempted / "model.safetensors").exists()

    config = smoke_config("swin", overrides)
    train(config, str(preempted))  # resumes at `stopped`
    straight = tmp_path / "straight"
    train(config, str(straight))
    a, b = rows(straight), rows(preempted)
    assert [r["step"] for r in b] == [r["step"] for r in a] == list(range(1, 41))  # no duplicate rows
    np.testing.assert_allclose([r["train/loss"] for r in b], [r["train/loss"] for r in a], rtol=1e-5)
    one = load_pretrained(config.model.name, str(straight / "model.safetensors"), **config.model.kwargs)
    two = load_pretrained(config.model.name, str(preempted / "model.safetensors"), **config.model.kwargs)
    np.testing.assert_allclose(two.head.fc.kernel[...], one.head.fc.kernel[...], rtol=1e-5, atol=1e-6)


def test_diverging_run_stops_and_keeps_the_last_finite_checkpoint(tmp_path):
    import orbax.checkpoint as ocp

    from flaxzoo.train.loop import train

    workdir = tmp_path / "run"
    good = ["total_steps=4", "log_every=1", "checkpoint_every=2"]
    train(smoke_config("swin", good), str(workdir))
    weights = (workdir / "model.safetensors").read_bytes()
    # Continue the run to step 8 with an absurd learning rate: step 5 blows the weights up and a later loss or
    # gradient goes non-finite. The step skips that update; the host sees the flag at the next log point, stops,
    # and never saves (the next checkpoint would be at step 8).
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--config", str(ROOT / "configs/swin/smoke.py"),
           "--workdir", str(workdir), "--config.total_steps=8", "--config.log_every=1", "--config.checkpoint_every=4",
           "--config.optim.lr=1e30"]  # (the optimizer chain must match the checkpoint: clip_norm stays)
    done = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()[-1]
    assert "Training diverged at step" in message and "non-finite" in message, done.stderr[-2000:]
    assert 5 <= int(message.split("diverged at step ")[1].split(":")[0]) <= 8
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
    assert (workdir / "model.safetensors").read_bytes() == weights  # the earlier good weights are untouched
    restored = ocp.CheckpointManager(str(workdir / "checkpoints")).restore(
        4, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    leaves = [np.asarray(x) for x in __import__("jax").tree.leaves(restored["state"]["params"])]
    assert leaves and all(np.isfinite(x).all() for x in leaves)


def read_events(path):
    """TFRecord framing (length, crc, payload, crc) around tensorboard Event protos."""
    from tensorboardX.proto import event_pb2

    data, events, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
        i += 12 + n + 4
    return events


def test_ema_run_evaluates_the_whole_split_and_writes_tensorboard(tmp_path):
    """UoE LM smoke run with EMA: the eval split has 10 windows (batches of 8 and 2, the second padded and
    masked); the eval loss equals the loss recomputed here over all 10 from the saved EMA weights."""
    import jax
    import jax.numpy as jnp
    import optax

    from flaxzoo import load_pretrained
    from flaxzoo.data.pipeline import make_dataset, make_source
    from flaxzoo.train.loop import train

    c = smoke_config("uoe", ["total_steps=2", "log_every=1", "eval_every=2", "checkpoint_every=2",
                             "ema_decay=0.5"])
    c.data.source_kwargs.stride = 4096
    workdir = tmp_path / "run"
    train(c, str(workdir))
    done = json.loads((workdir / "done.json").read_text())
    assert done["weights"].startswith("ema")
    assert (workdir / "model_raw.safetensors").exists()
    raw = load_pretrained(c.model.name, str(workdir / "model_raw.safetensors"), **c.model.kwargs)
    model = load_pretrained(c.model.name, str(workdir / "model.safetensors"), **c.model.kwargs)
    from flax import nnx

    differ = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(nnx.state(raw, nnx.Param)),
                                                     jax.tree.leaves(nnx.state(model, nnx.Param)))]
    assert any(differ)  # the EMA is not the raw weights
    source = make_source(c.data.eval, c.data.eval_split, **c.data.source_kwargs)
    assert len(source) == 10
    tokens = next(iter(make_dataset(source, preprocess=c.data.preprocess, global_batch=10, seed=c.seed,
                                    train=False, **c.data.pp)))["tokens"]
    model.eval()
    logits = model(jnp.asarray(tokens[:, :-1])).astype(jnp.float32)
    expected = float(optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(tokens[:, 1:])).mean())
    evals = [r for r in rows(workdir) if "eval/ce" in r]
    assert len(evals) == 1
    np.testing.assert_allclose(evals[0]["eval/ce"], expected, rtol=1e-4)

    events = [e for f in (workdir / "tb").iterdir() for e in read_events(f)]
    tags = {v.tag for e in events for v in e.summary.value}
    assert {"train/loss", "train/lr", "eval/ce", "examples_per_sec"} <= tags, tags


@pytest.mark.slow  # MAXIM's train step takes minutes to compile on a loaded 2-core CPU
def test_restoration_eval_writes_an_image_grid(tmp_path):
    from flaxzoo.train.loop import train

    c = smoke_config("maxim", ["total_steps=1", "log_every=1", "eval_every=1", "checkpoint_every=1"])
    workdir = tmp_path / "run"
    train(c, str(workdir))
    events = [e for f in (workdir / "tb").iterdir() for e in read_events(f)]
    images = [v.image for e in events for v in e.summary.value if v.tag == "eval/input_output_target"]
    assert len(images) == 1
    # 4 examples in a row (tensorboardX tiles a batch), each input | output | target side by side
    assert (images[0].width, images[0].height) == (4 * 3 * 16, 16)
    assert any("eval/psnr" in r for r in rows(workdir))
