"""Fit one shape with a hierarchical proxy-node field (after HPR3D), measure it, render it, export it.

    flaxzoo-fit-shape --shape builtin:ant --preset proxy_field_64 --out runs/fit_ant
    flaxzoo-fit-shape --shape my_mesh.ply --preset proxy_field_512 --steps 3000 --out runs/mine --edit 2:5:0,0,0.2

(`python scripts/fit_shape.py ...` is the same program.) The fit is an ordinary training run of
configs/proxy_field/fit.py in OUT/run (rerunning resumes it). Then OUT gets
  metrics.json   Chamfer-L1, normal consistency, F-score@1%, IoU, colour PSNR, fit time
  mesh.ply       marching cubes of the field, with vertex colours
  render.png     sphere-traced views: shaded normals (top row) and colour (bottom row)
and with --edit LEVEL:NODE:DX,DY,DZ (node NODE of level LEVEL and its subtree moved by (DX, DY, DZ)):
  edit.png       before (top two rows) and after (bottom two rows), edited_mesh.ply, and in metrics.json the
                 largest field change outside the moved nodes' support.
Existing outputs are kept unless --overwrite. Presets: flaxzoo.list_models('proxy_field_*'), or the baselines
field_baseline_mlp / field_baseline_grid.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from flaxzoo import cli
from flaxzoo.files import write_atomic

OUTPUTS = ("metrics.json", "mesh.ply", "render.png")
EDIT_OUTPUTS = ("edit.png", "edited_mesh.ply")
CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "proxy_field", "fit.py")


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--shape", required=True, help="builtin:NAME (ant, nut, torus, sphere, rounded_box, union), a "
                                                  "watertight .ply/.obj/.off/.stl, or points:FILE")
    p.add_argument("--preset", default="proxy_field_64", help="model name (default proxy_field_64)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps (default 3000)")
    p.add_argument("--batch-size", type=int, default=16, help="examples of 512 points per step (default 16)")
    p.add_argument("--points", type=int, default=131072, help="ground-truth SDF samples (default 131072)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    p.add_argument("--resolution", type=int, default=96, help="marching-cubes grid (default 96)")
    p.add_argument("--render-size", type=int, default=160, help="pixels per rendered view (default 160)")
    p.add_argument("--edit", default=None, help="LEVEL:NODE:DX,DY,DZ: move a node and its subtree")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    return p


def parse_edit(text: str) -> tuple[int, int, tuple[float, float, float]]:
    try:
        level, node, offset = text.split(":")
        delta = tuple(float(v) for v in offset.split(","))
        if len(delta) != 3:
            raise ValueError
        return int(level), int(node), delta
    except ValueError:
        raise cli.UsageError(f"--edit {text!r} must look like LEVEL:NODE:DX,DY,DZ, e.g. 2:5:0,0,0.2.") from None


def make_config(args):
    from flaxzoo.train.config_file import load_config

    config = load_config(f"{CONFIG}:{args.shape}")
    config.model.name = args.preset
    if not args.preset.startswith("proxy_field"):
        del config.model.kwargs["shape"]  # the baselines are not placed from the shape
    config.total_steps, config.batch_size, config.seed = args.steps, args.batch_size, args.seed
    config.data.source_kwargs.num_points = args.points
    config.optim.lr = args.lr
    config.optim.warmup_steps = min(config.optim.warmup_steps, max(args.steps // 10, 1))
    config.checkpoint_every = max(1, min(config.checkpoint_every, args.steps))
    config.log_every = max(1, min(config.log_every, args.steps))
    return config


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for name, value in (("--steps", args.steps), ("--batch-size", args.batch_size), ("--points", args.points)):
        if value < 1:
            raise cli.UsageError(f"{name} must be >= 1; got {value}.")
    edit = parse_edit(args.edit) if args.edit else None
    outputs = OUTPUTS + (EDIT_OUTPUTS if edit else ())
    existing = [n for n in outputs if os.path.exists(os.path.join(args.out, n))]
    if existing and not args.overwrite:
        raise FileExistsError(f"{args.out} already holds {', '.join(existing)}; pass --overwrite to replace them "
                              f"or choose another --out.")
    from flaxzoo.data import meshes

    shape = meshes.load_shape(args.shape)  # a bad shape fails here, before any training
    import jax

    from flaxzoo.eval import render, shape_metrics
    from flaxzoo.train.loop import train

    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    state = train(make_config(args), os.path.join(args.out, "run"), devices=jax.devices()[:1])
    fit_seconds = time.perf_counter() - start
    model = state.model()
    metrics, mesh = shape_metrics.shape_metrics(model, shape, resolution=args.resolution, seed=args.seed)
    metrics.update(shape=args.shape, preset=args.preset, steps=args.steps, fit_seconds=round(fit_seconds, 1),
                   parameters=int(sum(x.size for x in jax.tree.leaves(state.params))), device=jax.devices()[0].platform)
    shape_metrics.write_ply(os.path.join(args.out, "mesh.ply"), *mesh, overwrite=True)
    before = render.render_png(model, os.path.join(args.out, "render.png"), resolution=args.render_size)
    if edit:
        metrics["edit"] = _edit(model, edit, args, before)
    write_atomic(os.path.join(args.out, "metrics.json"), json.dumps(metrics, indent=2, default=float))
    print(json.dumps({k: metrics[k] for k in ("chamfer_l1", "normal_consistency", "fscore_1pct", "iou",
                                              "colour_psnr", "fit_seconds")}))
    return cli.EXIT_OK


def _edit(model, edit, args, before: np.ndarray) -> dict:
    from flaxzoo.eval import render, shape_metrics
    from flaxzoo.models import proxy_edit
    from flaxzoo.models.proxy_field import evaluate

    if not hasattr(model, "level_sizes"):
        raise cli.UsageError(f"--edit moves proxy nodes; {args.preset} has none (use a proxy_field_* preset).")
    level, node, delta = edit
    edited, moved = proxy_edit.transform_subtree(model, level, node, translate=delta)
    after = render.render_views(edited, resolution=args.render_size)
    render.save_png(os.path.join(args.out, "edit.png"),
                    np.concatenate([before, after["normals"], after["colour"]], 0))
    shape_metrics.write_ply(os.path.join(args.out, "edited_mesh.ply"), *shape_metrics.extract_mesh(edited, args.resolution),
                            overwrite=True)
    points = np.random.default_rng(args.seed).uniform(-1, 1, (50000, 3))
    change = np.abs(evaluate(edited, points)[0] - evaluate(model, points)[0])
    outside = ~proxy_edit.support(model, moved, points) & ~proxy_edit.support(edited, moved, points)
    return {"level": level, "node": node, "translate": list(delta), "moved_nodes": int(sum(map(len, moved.values()))),
            "max_change_outside_support": float(change[outside].max()) if outside.any() else 0.0,
            "max_change_inside_support": float(change[~outside].max()) if (~outside).any() else 0.0,
            "fraction_outside": float(outside.mean())}


def main(argv=None) -> int:
    return cli.call(run, argv)
