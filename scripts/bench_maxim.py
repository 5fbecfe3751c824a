#!/usr/bin/env python
"""MAXIM figures: build time, jitted inference time, and peak memory of tiled restoration.

  python scripts/bench_maxim.py                      # S-3: build, 256x256 inference, tiled 2048x2048
  python scripts/bench_maxim.py --skip-tiled         # only build + inference
  python scripts/bench_maxim.py --tiled-only --model maxim_s3 --size 2048 --tile 256

Peak memory is the child process's max RSS (resource.getrusage), so each tiled run gets a fresh process.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from flaxzoo import cli


def bench_build_and_infer(model_name: str, size: int, repeats: int) -> dict:
    import jax
    import flaxzoo
    from flaxzoo.eval.restore import Restorer

    jax.numpy.zeros(1).block_until_ready()  # backend start-up is not model building
    t = time.perf_counter()
    model = flaxzoo.create_model(model_name)
    build = time.perf_counter() - t
    restorer = Restorer(model)
    x = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    t = time.perf_counter()
    restorer(x)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        restorer(x)
        times.append(time.perf_counter() - t)
    return {"model": model_name, "build_s": round(build, 2), "compile_and_first_run_s": round(first, 1),
            f"infer_{size}x{size}_s": round(float(np.median(times)), 2), "repeats": repeats}


def tiled_child(model_name: str, size: int, tile: int, overlap: int, batch: int) -> None:
    import flaxzoo
    from flaxzoo.eval.restore import Restorer, restore_image

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    restorer = Restorer(flaxzoo.create_model(model_name))
    rng = np.random.default_rng(0)
    image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    t = time.perf_counter()
    out = restore_image(restorer, image, tile=tile, overlap=overlap, batch_size=batch)
    elapsed = time.perf_counter() - t
    assert out.shape == image.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"model": model_name, "image": f"{size}x{size}", "tile": tile, "overlap": overlap,
                      "batch": batch, "seconds": round(elapsed, 1), "peak_rss_MiB": round(peak / 1024),
                      "rss_after_import_MiB": round(base / 1024)}))


def run(argv) -> int:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="maxim_s3", help="MAXIM preset to time")
    p.add_argument("--infer-size", type=int, default=256, help="image side for the inference timing")
    p.add_argument("--repeats", type=int, default=3, help="timed inference runs (median reported)")
    p.add_argument("--size", type=int, default=2048, help="image side for the tiled restoration")
    p.add_argument("--tile", type=int, default=256, help="tile side")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels")
    p.add_argument("--batch", type=int, default=1, help="tiles per jitted call")
    p.add_argument("--skip-tiled", action="store_true", help="only build + inference")
    p.add_argument("--tiled-only", action="store_true", help="only the tiled restoration")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        tiled_child(a.model, a.size, a.tile, a.overlap, a.batch)
        return cli.EXIT_OK
    if not a.tiled_only:
        print(json.dumps(bench_build_and_infer(a.model, a.infer_size, a.repeats)), flush=True)
    if not a.skip_tiled:
        cmd = [sys.executable, __file__, "--child", "--model", a.model, "--size", str(a.size), "--tile", str(a.tile),
               "--overlap", str(a.overlap), "--batch", str(a.batch)]
        return subprocess.call(cmd)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.call(run))
