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

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from train_worker import smoke_config  # noqa: E402

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
           "--config.optim.lr=1e30"]
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


def test_restoration_run_with_ema_whole_split_eval_and_tensorboard(tmp_path):
    import jax
    import jax.numpy as jnp

    from flaxzoo import load_pretrained
    from flaxzoo.data.pipeline import make_dataset, make_source
    from flaxzoo.train.loop import train
    from flaxzoo.train.tasks.restore import example_psnr, final_output

    c = smoke_config("maxim", ["total_steps=2", "log_every=1", "eval_every=2", "checkpoint_every=2",
                               "ema_decay=0.5"])
    c.data.source_kwargs.num = 208  # a 13-example test split: batches of 8 and 5 (padded to 8, masked)
    workdir = tmp_path / "run"
    train(c, str(workdir))
    done = json.loads((workdir / "done.json").read_text())
    assert done["weights"].startswith("ema")
    assert (workdir / "model_raw.safetensors").exists()

    # The eval PSNR is the mean over all 13 examples, recomputed here from the saved (EMA) weights.
    source = make_source(c.data.eval, c.data.eval_split, **c.data.source_kwargs)
    assert len(source) == 13
    ds = make_dataset(source, preprocess=c.data.preprocess, global_batch=13, seed=c.seed, train=False, **c.data.pp)
    batch = next(iter(ds))
    model = load_pretrained(c.model.name, str(workdir / "model.safetensors"), **c.model.kwargs)
    model.eval()
    out = final_output(model(jnp.asarray(batch["input"])))
    expected = float(jnp.mean(example_psnr(out.astype(jnp.float32), jnp.asarray(batch["target"]))))
    eval_row = [r for r in rows(workdir) if "eval/psnr" in r]
    assert len(eval_row) == 1
    np.testing.assert_allclose(eval_row[0]["eval/psnr"], expected, rtol=1e-4)

    events = [e for f in (workdir / "tb").iterdir() for e in read_events(f)]
    tags = {v.tag for e in events for v in e.summary.value}
    assert {"train/loss", "train/lr", "eval/psnr", "eval/input_output_target"} <= tags, tags
    del jax
