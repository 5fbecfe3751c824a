"""The official google-research/maxim model timed like flaxzoo's MAXIM (a separate program: its source on the path).

    python flaxzoo/bench/official_maxim.py --src DIR --kwargs '{"features": 32, ...}' --batch 1 --size 256x256

DIR is a checkout of https://github.com/google-research/maxim (it needs only flax and einops to build the
model). Imports nothing of flaxzoo. The parameters are made with `jax.eval_shape(model.init)` and filled with
N(0, 0.02) values: the official init is slow to run (un-jitted, about 40 s for a tiny model on a CPU; jitted,
minutes) and speed does not depend on the values. Times the jitted `apply` (inference) and prints one JSON line;
exit 3 with an "error" line when the source or einops is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

NOT_AVAILABLE = 3
# flaxzoo's MAXIM constructor takes these besides the official config fields.
NOT_OFFICIAL = ("in_channels", "conv_init_scale", "dtype")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--src", required=True)
    p.add_argument("--kwargs", required=True, help="JSON of the official MAXIM config fields")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--size", required=True, help="HxW")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reuse-memory", action="store_true",
                   help="reuse each run's memory as flaxzoo does on a CPU (flaxzoo/cpu_memory.py)")
    a = p.parse_args(argv)
    reused = False
    if a.reuse_memory:  # before jax starts its backends
        from peer_memory import apply  # this program's folder is on sys.path

        reused = apply(jax_program=True)
    if not os.path.isfile(os.path.join(a.src, "maxim", "models", "maxim.py")):
        print(json.dumps({"error": f"{a.src} has no maxim/models/maxim.py: pass a checkout of "
                                   f"https://github.com/google-research/maxim"}))
        return NOT_AVAILABLE
    sys.path.insert(0, os.path.abspath(a.src))
    try:
        import jax
        import jax.numpy as jnp
        from maxim.models.maxim import MAXIM
    except ImportError as e:
        print(json.dumps({"error": f"the official code does not import ({e}); it needs flax and einops"}))
        return NOT_AVAILABLE
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in json.loads(a.kwargs).items()
              if k not in NOT_OFFICIAL}
    model = MAXIM(**kwargs)
    h, w = (int(v) for v in a.size.split("x"))
    x = jnp.asarray(jax.random.uniform(jax.random.key(1), (a.batch, h, w, 3)))
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    leaves, tree = jax.tree.flatten(shapes)
    keys = jax.random.split(jax.random.key(0), len(leaves))
    params = jax.tree.unflatten(tree, [0.02 * jax.random.normal(k, s.shape, s.dtype) for k, s in zip(keys, leaves)])

    def forward(params, x):
        y = model.apply({"params": params}, x, train=False)
        while isinstance(y, (list, tuple)):
            y = y[-1]
        return y

    t = time.perf_counter()
    compiled = jax.jit(forward).lower(params, x).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(compiled(params, x))
    first = time.perf_counter() - t
    for _ in range(a.warmup):
        jax.block_until_ready(compiled(params, x))
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled(params, x))
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(json.dumps({"peer": "official", "mode": "infer", "src": a.src, "compile_s": compile_s, "first_run_s": first,
                      "median_s": median, "min_s": min(times), "images_per_s": a.batch / median,
                      "params": int(sum(leaf.size for leaf in leaves)), "cpu_memory_reused": reused}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
