"""Peers timed in the same run as flaxzoo's model, so the ratio holds even on a loaded machine.

- `timm`: timm's model of the same name (Swin), in a subprocess of `peer_python` (torch may live in its own
  environment); when torch/timm are missing there, one line says so and the report has flaxzoo alone.
- `official`: for a MAXIM preset, the google-research/maxim code from a checkout the user gives
  (`official_src`), in a subprocess (inference only: the official training code was never released).
- `dense`: for a UoE language model, `flaxzoo.bench.dense_lm.DenseLM` with the same widths (every expert on
  every token), timed by the same harness as the model.

`--model-kwargs` that change the preset's architecture (a key of its registered constructor arguments, e.g.
MAXIM's `features`) are given to every peer too (`peer_kwargs`), so both sides build the same network; flaxzoo's
own switches (`expert_impl`, `remat`, ...) are not, and the peer times its own default for them.

When flaxzoo's side reuses its CPU memory between runs (flaxzoo/cpu_memory.py), the subprocess peers are told
to do the same (`--reuse-memory`); `dense` runs in the same process.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import flaxzoo
from flaxzoo import cpu_memory
from flaxzoo.bench import measure
from flaxzoo.validate import InputError

PEERS = ("timm", "official", "dense")
TIMM_SCRIPT = os.path.join(os.path.dirname(__file__), "timm_peer.py")
OFFICIAL_SCRIPT = os.path.join(os.path.dirname(__file__), "official_maxim.py")


def peer_kwargs(name: str, model_kwargs: dict | None) -> dict:
    """The `--model-kwargs` a peer must build with too: those that override the preset's architecture."""
    preset = flaxzoo.get_spec(name).kwargs
    return {k: v for k, v in (model_kwargs or {}).items() if k in preset}


def check_peer(peer: str, name: str, official_src: str | None = None) -> None:
    """Refuse a peer that cannot exist for this model, before anything is built."""
    spec = flaxzoo.get_spec(name)
    if peer == "official":
        if spec.family != "maxim":
            raise InputError(f"--peer official is the google-research/maxim code; {name} is a {spec.family} model. "
                             f"Use it with a MAXIM preset (e.g. maxim_s3).")
        if not official_src:
            raise InputError("--peer official needs --official-src DIR, a checkout of "
                             "https://github.com/google-research/maxim.")
        if not os.path.isfile(os.path.join(official_src, "maxim", "models", "maxim.py")):
            raise InputError(f"--official-src {official_src} has no maxim/models/maxim.py: pass the root of a "
                             f"checkout of https://github.com/google-research/maxim.")
    if peer == "timm" and spec.family != "swin":
        raise InputError(f"--peer timm compares timm's model of the same name; {name} is a {spec.family} model, "
                         f"which timm does not have. Use it with a Swin model (e.g. swin_tiny_patch4_window7_224).")
    if peer == "dense" and measure.task_of(name) != "lm":
        raise InputError(f"--peer dense is the dense transformer of a UoE language model's widths; {name} is not "
                         f"one. Use it with uoe_lm_tiny, uoe_lm_small or uoe_lm_wt103.")
    if peer not in PEERS:
        raise InputError(f"Unknown --peer {peer!r}; choose from {', '.join(PEERS)}.")


def timm_peer(name: str, *, batch: int, size, dtype: str, repeats: int, warmup: int, train: bool,
              peer_python: str, torch_compile: bool = False, timeout: float = 1800,
              model_kwargs: dict | None = None) -> dict:
    """timm's figures from a subprocess; {'status': 'not installed ...'} when it has no torch/timm."""
    size = tuple(size or measure.default_size(name))
    cmd = [peer_python, TIMM_SCRIPT, "--model", name, "--batch", str(batch), "--size", f"{size[0]}x{size[1]}",
           "--dtype", dtype, "--repeats", str(repeats), "--warmup", str(warmup)]
    arch = peer_kwargs(name, model_kwargs)
    cmd += ["--kwargs", json.dumps(arch)] if arch else []
    cmd += ["--train"] if train else []
    cmd += ["--compile"] if torch_compile else []
    cmd += ["--reuse-memory"] if cpu_memory.applied() else []  # allocate as flaxzoo's side does
    result = _subprocess_peer("timm", cmd, timeout, "pip install torch timm there, or pass --peer-python")
    if result["status"].startswith("not available"):
        result["status"] = "not installed" + result["status"][len("not available"):]
    return {**result, "python": peer_python, "model_kwargs": arch} if result["status"] == "ok" else result


def _subprocess_peer(peer: str, cmd: list[str], timeout: float, what: str) -> dict:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return {"peer": peer, "status": f"not run: {cmd[0]} does not exist"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if "error" in result:
        return {"peer": peer, "status": f"not available: {result['error']} ({what})"}
    if proc.returncode != 0 or not result:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peer": peer, "status": f"failed (exit {proc.returncode}): {tail}"}
    return {**result, "status": "ok"}


def official_peer(name: str, *, batch: int, size, repeats: int, warmup: int, official_src: str,
                  timeout: float = 3600, model_kwargs: dict | None = None, **_) -> dict:
    size = tuple(size or measure.default_size(name))
    arch = peer_kwargs(name, model_kwargs)
    kwargs = {**flaxzoo.get_spec(name).kwargs, **arch}
    cmd = [sys.executable, OFFICIAL_SCRIPT, "--src", official_src, "--kwargs", json.dumps(kwargs),
           "--batch", str(batch), "--size", f"{size[0]}x{size[1]}", "--repeats", str(repeats), "--warmup",
           str(warmup)] + (["--reuse-memory"] if cpu_memory.applied() else [])
    result = _subprocess_peer("official", cmd, timeout, "the official model needs flax and einops")
    if result["status"] == "ok":
        result["model_kwargs"] = arch
        if _.get("train"):
            result["note"] = "inference only: the official training code was never released"
    return result


def dense_peer(name: str, *, batch: int, size, dtype: str, repeats: int, warmup: int, train: bool,
               peak: float | None, model_kwargs: dict | None = None) -> dict:
    from flax import nnx

    from flaxzoo.bench.dense_lm import DenseLM

    arch = peer_kwargs(name, model_kwargs)
    kw = {**flaxzoo.get_spec(name).kwargs, **arch}
    dense = DenseLM(kw["vocab_size"], kw["dim"], kw["depth"], kw["num_heads"], kw["hidden_dim"],
                    dtype=measure.DTYPES[dtype], rngs=nnx.Rngs(0))
    result = measure.benchmark(name, batch=batch, size=size, dtype=dtype, repeats=repeats, warmup=warmup,
                               peak=peak, model=dense, modes=("train",) if train else ("infer",))
    return {"peer": "dense", "model": f"DenseLM with {name}'s widths", "status": "ok", "model_kwargs": arch,
            **result}


def times_mode(peer: str, mode: str) -> bool:
    """The official MAXIM code has no training step to time (it was never released)."""
    return mode == "infer" or peer != "official"


def run_peer(peer: str, name: str, *, mode: str, peer_python: str | None = None, torch_compile: bool = False,
             official_src: str | None = None, **kw) -> dict:
    """One peer's figures for one mode ('infer' or 'train'), from a fresh build (and process, but for dense)."""
    kw["train"] = mode == "train"
    if peer == "timm":
        kw.pop("peak", None)
        return timm_peer(name, peer_python=peer_python or sys.executable, torch_compile=torch_compile, **kw)
    if peer == "official":
        return official_peer(name, official_src=official_src, **kw)
    return dense_peer(name, **kw)


def merge_rounds(runs: list[dict]) -> dict:
    """One figure from a peer's rounds (same mode): the median of the round medians, the per-round medians kept."""
    ok = [r for r in runs if r.get("status", "ok") == "ok"]
    if len(runs) == 1 or not ok:
        return runs[-1]
    merged = dict(ok[-1])
    merged["round_medians_s"] = [r["median_s"] for r in ok]
    merged["median_s"] = statistics.median(merged["round_medians_s"])
    merged["min_s"] = min(r["min_s"] for r in ok)
    speedup = ok[-1]["median_s"] / merged["median_s"]  # rates and FLOP/s scale with 1 / median
    for key in ("images_per_s", "tokens_per_s", "achieved_tflops", "mfu"):
        if key in merged:
            merged[key] = ok[-1][key] * speedup
    if len(ok) < len(runs):
        merged["failed_rounds"] = len(runs) - len(ok)
    return merged


def collect(peer: str, runs_by_mode: dict[str, list[dict]]) -> list[dict]:
    """The JSON records of one peer: one per mode for timm/official (with 'mode'); dense keeps both modes in one."""
    runs_by_mode = {mode: runs for mode, runs in runs_by_mode.items() if runs}
    if peer != "dense":
        return [merge_rounds(runs) for runs in runs_by_mode.values()]
    failed = [r for runs in runs_by_mode.values() for r in runs if r["status"] != "ok"]
    if failed or not runs_by_mode:
        return failed[:1]
    first = next(iter(runs_by_mode.values()))[0]
    record = {k: v for k, v in first.items() if k not in ("infer", "train")}
    for mode, runs in runs_by_mode.items():
        record[mode] = merge_rounds([run[mode] for run in runs])
    return [record]
