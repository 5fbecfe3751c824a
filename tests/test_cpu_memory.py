"""Reusing a CPU program's memory between runs (flaxzoo/cpu_memory.py): each run of a program with a large
temporary buffer faults that buffer in again unless the settings are on; with them it faults nothing, and
the results are the same. Each case runs in a fresh Python, since the settings must precede jax's backends."""
import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the settings are glibc's")

PROGRAM = r"""
import json, resource, sys
from flaxzoo import cpu_memory
applied = cpu_memory.reuse_step_memory()
import jax, jax.numpy as jnp
from jax import lax

# a 128 MiB temporary (the barrier keeps XLA from fusing it away) and a small result
f = jax.jit(lambda x: (lax.optimization_barrier(x * 2.0) + 1.0).sum(axis=0))
x = jnp.ones((4096, 8192), jnp.float32)
faults, results = [], []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    results.append(float(y[0]))
print(json.dumps({"applied": applied, "both": cpu_memory.applied(), "faults": faults, "results": results,
                  "async": bool(jax.config.read("jax_cpu_enable_async_dispatch"))}))
"""


def _run(env_value):
    env = {k: v for k, v in os.environ.items() if k != "FLAXZOO_CPU_MEMORY"}
    if env_value is not None:
        env["FLAXZOO_CPU_MEMORY"] = env_value
    env["JAX_NUM_CPU_DEVICES"] = "1"
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runs_reuse_their_memory_and_give_the_same_results():
    reused, default = _run(None), _run("default")
    assert reused["applied"] and reused["both"] and not reused["async"]
    assert not default["applied"] and not default["both"] and default["async"]
    every_run = min(default["faults"][1:])  # the default: the temporaries are faulted in again on every run
    assert every_run > 4000  # (8k pages here: XLA keeps 32 MiB of the 128 MiB live at once)
    assert max(reused["faults"][2:]) < every_run / 20  # reused: after the first runs, next to nothing
    assert reused["results"] == default["results"] == [4096 * 3.0] * 4


def test_it_changes_nothing_once_jax_has_started():
    program = ("import jax, json; jax.numpy.ones(1).block_until_ready()\n"
               "from flaxzoo import cpu_memory\n"
               "print(json.dumps([cpu_memory.reuse_step_memory(), cpu_memory.applied(), "
               "bool(jax.config.read('jax_cpu_enable_async_dispatch'))]))")
    env = {k: v for k, v in os.environ.items() if k != "FLAXZOO_CPU_MEMORY"}
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False, True]


def test_peers_are_told_to_allocate_the_same_way(monkeypatch):
    from flaxzoo import cpu_memory
    from flaxzoo.bench import peers

    commands = []
    monkeypatch.setattr(peers, "_subprocess_peer", lambda peer, cmd, *a: commands.append(cmd) or {"status": "x"})
    for applied in (True, False):
        monkeypatch.setattr(cpu_memory, "applied", lambda applied=applied: applied)
        peers.timm_peer("swin_tiny_patch4_window7_224", batch=1, size=(224, 224), dtype="float32", repeats=1,
                        warmup=0, train=False, peer_python=sys.executable)
        peers.official_peer("maxim_tiny", batch=1, size=(64, 64), repeats=1, warmup=0, official_src="src")
    assert ["--reuse-memory" in cmd for cmd in commands] == [True, True, False, False]


def test_the_peer_programs_load_the_settings_by_path():
    """timm's peer runs in a torch venv without flaxzoo: flaxzoo/bench/ is its sys.path[0], nothing else."""
    bench = os.path.join(os.path.dirname(__file__), os.pardir, "flaxzoo", "bench")
    program = ("import sys, json; sys.path.insert(0, sys.argv[1])\n"
               "import peer_memory; print(json.dumps([peer_memory.apply(jax_program=False), 'flaxzoo' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k != "FLAXZOO_CPU_MEMORY"}
    out = subprocess.run([sys.executable, "-c", program, bench], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, False]
