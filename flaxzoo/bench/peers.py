"""Peers timed in the same run as flaxzoo's model, so the ratio holds even on a loaded machine.

- `timm`: timm's model of the same name (Swin), in a subprocess of `peer_python` (torch may live in its own
  environment); when torch/timm are missing there, one line says so and the report has flaxzoo alone.
- `dense`: for a UoE language model, `flaxzoo.bench.dense_lm.DenseLM` with the same widths (every expert on
  every token), timed by the same harness as the model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import flaxzoo
from flaxzoo.bench import measure
from flaxzoo.validate import InputError

PEERS = ("timm", "dense")
TIMM_SCRIPT = os.path.join(os.path.dirname(__file__), "timm_peer.py")


def check_peer(peer: str, name: str) -> None:
    """Refuse a peer that cannot exist for this model, before anything is built."""
    spec = flaxzoo.get_spec(name)
    if peer == "timm" and spec.family != "swin":
        raise InputError(f"--peer timm compares timm's model of the same name; {name} is a {spec.family} model, "
                         f"which timm does not have. Use it with a Swin model (e.g. swin_tiny_patch4_window7_224).")
    if peer == "dense" and measure.task_of(name) != "lm":
        raise InputError(f"--peer dense is the dense transformer of a UoE language model's widths; {name} is not "
                         f"one. Use it with uoe_lm_tiny, uoe_lm_small or uoe_lm_wt103.")
    if peer not in PEERS:
        raise InputError(f"Unknown --peer {peer!r}; choose from {', '.join(PEERS)}.")


def timm_peer(name: str, *, batch: int, size, dtype: str, repeats: int, warmup: int, train: bool,
              peer_python: str, torch_compile: bool = False, timeout: float = 1800) -> dict:
    """timm's figures from a subprocess; {'status': 'not installed ...'} when it has no torch/timm."""
    cmd = [peer_python, TIMM_SCRIPT, "--model", name, "--batch", str(batch), "--size", f"{size[0]}x{size[1]}",
           "--dtype", dtype, "--repeats", str(repeats), "--warmup", str(warmup)]
    cmd += ["--train"] if train else []
    cmd += ["--compile"] if torch_compile else []
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return {"peer": "timm", "status": f"not run: --peer-python {peer_python} does not exist"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if "error" in result:
        return {"peer": "timm", "status": f"not installed: {result['error']} (pip install torch timm there, or pass "
                                          f"--peer-python)"}
    if proc.returncode != 0 or not result:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peer": "timm", "status": f"failed (exit {proc.returncode}): {tail}"}
    return {**result, "status": "ok", "python": peer_python}


def dense_peer(name: str, *, batch: int, size, dtype: str, repeats: int, warmup: int, train: bool,
               peak: float | None) -> dict:
    from flax import nnx

    from flaxzoo.bench.dense_lm import DenseLM

    kw = flaxzoo.get_spec(name).kwargs
    dense = DenseLM(kw["vocab_size"], kw["dim"], kw["depth"], kw["num_heads"], kw["hidden_dim"],
                    dtype=measure.DTYPES[dtype], rngs=nnx.Rngs(0))
    result = measure.benchmark(name, batch=batch, size=size, train=train, dtype=dtype, repeats=repeats,
                               warmup=warmup, peak=peak, model=dense)
    return {"peer": "dense", "model": f"DenseLM with {name}'s widths", "status": "ok", **result}


def run_peer(peer: str, name: str, *, peer_python: str | None = None, torch_compile: bool = False, **kw) -> dict:
    if peer == "timm":
        kw.pop("peak", None)
        return timm_peer(name, peer_python=peer_python or sys.executable, torch_compile=torch_compile, **kw)
    return dense_peer(name, **kw)
