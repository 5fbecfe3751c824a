#!/usr/bin/env python
"""Proxy-node fields: compactness sweep against a global MLP and a dense grid, and query speed.

    python scripts/bench_proxy_field.py --out runs/bench_proxy --shape builtin:nut --steps 200

Compactness: each model is fitted by the common loop (configs/proxy_field/fit.py, the same samples,
batch, steps and learning rate for all) and measured with flaxzoo.eval.shape_metrics. Proxy trees with 1, 2
and 3 levels under the root at 64 leaves, and 3 levels at 512; the baselines are sized to the parameter count of
the 2-level tree (positional-encoding MLP: hidden width; dense grid: resolution). Writes OUT/sweep.json,
OUT/compactness.png (Chamfer-L1 and F-score against parameters) and prints a markdown table.
Speed: points/s of jitted queries of 1M points (chunks of 65536) for each preset and baseline.
Time: about 20 minutes on 2 heavily loaded CPU cores with the defaults.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

TREES = [(1, 64), (1, 8, 64), (1, 4, 16, 64), (1, 8, 64, 512)]
MATCH = [(1, 8, 64)]  # the baselines get these trees' parameter counts


def mlp_width(params: int) -> int:  # FieldMlp, 6 octaves: h^2 + 45 h + 4 parameters
    return max(4, round((-45 + math.sqrt(45 ** 2 - 4 * (4 - params))) / 2))


def grid_resolution(params: int, channels: int = 8, hidden: int = 32) -> int:
    decoder = channels * hidden + hidden + hidden * hidden + hidden + hidden * 4 + 4
    return max(2, round(((params - decoder) / channels) ** (1 / 3)))


def count(model) -> int:
    import jax
    from flax import nnx

    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def fit(name, kwargs, args, workdir):
    import jax

    from flaxzoo.data import meshes
    from flaxzoo.eval import shape_metrics
    from flaxzoo.train.config_file import load_config
    from flaxzoo.train.loop import train

    config = load_config(f"configs/proxy_field/fit.py:{args.shape}")
    config.model.name = name
    if not name.startswith("proxy_field"):
        del config.model.kwargs["shape"]
    config.model.kwargs.update(kwargs)
    config.total_steps, config.batch_size = args.steps, args.batch
    config.data.source_kwargs.num_points = args.points
    config.optim.update(dict(lr=args.lr, warmup_steps=max(1, args.steps // 20)))
    config.log_every, config.checkpoint_every = max(1, args.steps // 5), args.steps
    start = time.perf_counter()
    state = train(config, workdir, devices=jax.devices()[:1])
    seconds = time.perf_counter() - start
    model = state.model()
    try:
        metrics, _ = shape_metrics.shape_metrics(model, meshes.load_shape(args.shape), resolution=args.resolution)
    except shape_metrics.NoSurfaceError:  # a fit that found no surface scores as failed, the sweep goes on
        metrics = {k: float("nan") for k in ("chamfer_l1", "normal_consistency", "fscore_1pct", "iou", "colour_psnr")}
    return dict(metrics, model=name, kwargs={k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                parameters=count(model), fit_seconds=round(seconds, 1))


def speed(args) -> list[dict]:
    import flaxzoo
    import numpy as np

    from flaxzoo.models.proxy_field import evaluate

    points = np.random.default_rng(0).uniform(-1, 1, (1_000_000, 3)).astype(np.float32)
    rows = []
    for name in ("proxy_field_64", "proxy_field_512", "proxy_field_4096", "field_baseline_mlp", "field_baseline_grid"):
        model = flaxzoo.create_model(name, shape=args.shape) if name.startswith("proxy") else flaxzoo.create_model(name)
        evaluate(model, points[:65536], chunk=65536)  # compile
        start = time.perf_counter()
        evaluate(model, points, chunk=65536)
        seconds = time.perf_counter() - start
        rows.append(dict(model=name, parameters=count(model), points_per_second=round(len(points) / seconds)))
        print(rows[-1], flush=True)
    return rows


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flaxzoo.files import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    groups = {}
    for r in rows:
        label = r["model"] if not r["model"].startswith("proxy") else f"proxy, {len(r['kwargs']['level_sizes']) - 1} level(s)"
        groups.setdefault(label, []).append(r)
    for label, rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["parameters"])
        for ax, key in zip(axes, ("chamfer_l1", "fscore_1pct")):
            ax.plot([r["parameters"] for r in rs], [r[key] for r in rs], "o-", label=label)
    for ax, title in zip(axes, ("Chamfer-L1 (lower is better)", "F-score @ 1% (higher is better)")):
        ax.set_xlabel("parameters")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench_proxy_field")
    p.add_argument("--shape", default="builtin:nut")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--points", type=int, default=65536)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--resolution", type=int, default=48)
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from flaxzoo.models.proxy_field import parameter_count

    jobs = [("proxy_field_64", dict(level_sizes=tree)) for tree in TREES]
    for tree in MATCH:
        target = parameter_count(tree)
        jobs.append(("field_baseline_mlp", dict(hidden=mlp_width(target))))
        jobs.append(("field_baseline_grid", dict(resolution=grid_resolution(target))))
    rows = []
    for i, (name, kwargs) in enumerate(jobs):
        rows.append(fit(name, kwargs, args, os.path.join(args.out, f"run{i}")))
        print(json.dumps({k: rows[-1][k] for k in ("model", "kwargs", "parameters", "chamfer_l1", "fscore_1pct",
                                                   "iou", "colour_psnr", "fit_seconds")}), flush=True)
    result = {"sweep": rows, "args": vars(args), "load": os.getloadavg()}
    if not args.skip_speed:
        result["speed"] = speed(args)
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump(result, f, indent=1, default=float)
    plot(rows, os.path.join(args.out, "compactness.png"))
    print("| model | tree / size | params | Chamfer-L1 | normal cons. | F@1% | IoU | colour PSNR | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = r["kwargs"].get("level_sizes") or r["kwargs"]
        print(f"| {r['model']} | {size} | {r['parameters']} | {r['chamfer_l1']:.4f} | {r['normal_consistency']:.3f} | "
              f"{r['fscore_1pct']:.3f} | {r['iou']:.3f} | {r['colour_psnr']:.1f} | {r['fit_seconds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
