"""Swin inference throughput (img/s), flaxzoo and optionally timm in the same run.

Protocol of the timm CPU baseline in the reference notes: random weights, 3 warm-up + 10
timed forwards, report batch / median time.

    python scripts/bench_swin.py                                   # Swin-T, 224, batch 8, fp32
    python scripts/bench_swin.py --batch 256 --dtype bfloat16 --timm   # on a GPU, against timm
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from flaxzoo import cli


def timed(fn, warmup: int, iters: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first


def bench_flaxzoo(args, size):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import flaxzoo

    dtype = jnp.dtype(args.dtype)
    model = flaxzoo.create_model(args.model, rngs=nnx.Rngs(0), dtype=dtype)
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((args.batch, size, size, 3)), dtype)
    med, first = timed(lambda: forward(state, x).block_until_ready(), args.warmup, args.iters)
    return med, first, f"{jax.devices()[0].device_kind} (jax {jax.__version__})"


def bench_timm(args, size):
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    model = timm.create_model(args.model, pretrained=False).eval().to(device=device, dtype=dtype)
    x = torch.randn(args.batch, 3, size, size, device=device, dtype=dtype)

    def forward():
        with torch.no_grad():
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    med, first = timed(forward, args.warmup, args.iters)
    return med, first, f"timm {timm.__version__}, torch {torch.__version__} on {device}"


def run(argv) -> int:
    parser = cli.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="swin_tiny_patch4_window7_224")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="image side (default: the preset's input size)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--timm", action="store_true", help="also time timm's model (needs torch + timm)")
    args = parser.parse_args(argv)

    import flaxzoo

    size = args.size or flaxzoo.get_spec(args.model).info["input_size"][0]
    runs = [("flaxzoo", bench_flaxzoo)] + ([("timm", bench_timm)] if args.timm else [])
    for name, fn in runs:
        med, first, where = fn(args, size)
        print(f"{name}: {args.model} {size}x{size} batch {args.batch} {args.dtype} on {where}: "
              f"median {med * 1e3:.1f} ms/batch, {args.batch / med:.1f} img/s; first call {first:.1f} s", flush=True)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.call(run))
