"""SNMF vs a TopK SAE vs DiffMeans vs PCA: concept detection and steering at matched KL, offline, with seeds.

    flaxzoo-interpret-bench --vision-weights runs/swin_textures --text-weights runs/uoe_lm_pydoc --seeds 0,1,2
    flaxzoo-interpret-bench --solver-timing 3072,20000,100,20      # seconds/iteration and peak memory

(`python scripts/interpret_bench.py ...` is the same program.) vision: a Swin trained on the bundled
texture classes (configs/swin/textures.py); concepts = classes; features fitted on train-split
patches, detection AUROC and steering on test-split patches; steering score = rise of the class
probability. text: the UoE LM trained on the pydoc prose (configs/uoe/lm_pydoc.py); concepts = pydoc
topics (passages split into fit and held-out); steering score = rise of the probability of the
topic's characteristic characters at the last position of base prompts. Prints one table (mean and
std over seeds; DiffMeans and PCA do not depend on the seed); --json also writes the numbers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from flaxzoo import cli

METHODS = ("SNMF", "SAE", "DiffMeans", "PCA")


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--vision-weights", default=None, help="workdir of a configs/swin/textures.py run")
    p.add_argument("--vision-layer", default="layers.2.blocks.1.mlp")
    p.add_argument("--text-weights", default=None, help="workdir of a configs/uoe/lm_pydoc.py run")
    p.add_argument("--text-layer", default="blocks.1.mlp")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--k", type=int, default=50, help="features per method (SNMF, SAE latents, PCA components)")
    p.add_argument("--vision-sparsity", type=float, default=0.01, help="SNMF kept fraction (d_mlp 512: 6 neurons)")
    p.add_argument("--text-sparsity", type=float, default=0.05, help="SNMF kept fraction (d_mlp 128: 7 neurons)")
    p.add_argument("--sae-k", type=int, default=4, help="active latents of the TopK SAE")
    p.add_argument("--iters", type=int, default=300, help="SNMF iterations")
    p.add_argument("--sae-steps", type=int, default=1500)
    p.add_argument("--targets", default="0.1,0.25", help="KL targets for steering")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--solver-timing", default=None, metavar="D,N,K,ITERS",
                   help="only time the SNMF solver on synthetic GELU data of this size (a fresh process)")
    return p


def directions(method: str, A, labels, num_concepts: int, k: int, sparsity: float, seed: int, args):
    from flaxzoo.interpret import baselines, snmf

    if method == "SNMF":
        return snmf.fit(A, k, sparsity=sparsity, max_iter=args.iters, patience=args.iters, seed=seed).Z
    if method == "SAE":
        return baselines.train_topk_sae(A, k, args.sae_k, steps=args.sae_steps, seed=seed).directions
    if method == "DiffMeans":
        return baselines.diffmeans(A, labels, num_concepts)
    P = baselines.pca(A, k)
    return np.concatenate([P, -P], 1)  # a principal direction has no sign: offer both


def evaluate_task(task: dict, seeds, targets, args) -> dict:
    """{method: {"auroc": [per seed], "rise@T": [per seed]}} for one task."""
    from flaxzoo.interpret import evaluation as E

    fit, held = task["fit"], task["held"]
    C = task["num_concepts"]
    token_labels = fit["labels"][fit["example"]]
    results = {}
    for method in METHODS:
        runs = []
        for seed in (seeds if method in ("SNMF", "SAE") else seeds[:1]):
            start = time.perf_counter()
            D = directions(method, fit["A"], token_labels, C, args.k, task["sparsity"], seed, args)
            if method == "DiffMeans":
                chosen = np.arange(C)
            else:
                fit_scores = E.example_scores(fit["A"], fit["example"], len(fit["labels"]), D)
                chosen = E.best_directions(fit_scores, fit["labels"], C)
            held_scores = E.example_scores(held["A"], held["example"], len(held["labels"]), D[:, chosen])
            aurocs = [E.auroc(held_scores[c], held["labels"] == c) for c in range(C)]
            rises = {t: [] for t in targets}
            for c in range(C):
                found = E.steering_rise(task["steerer"], task["base_x"], D[:, chosen[c]], task["mass"](c), targets,
                                        readout=task["readout"])
                for t in targets:
                    rises[t].append(found[t][0])
            runs.append({"auroc": float(np.nanmean(aurocs)),
                         **{f"rise@{t}": float(np.nanmean(rises[t])) if not np.all(np.isnan(rises[t])) else
                            float("nan") for t in targets},
                         **{f"hit@{t}": int(np.sum(~np.isnan(rises[t]))) for t in targets},
                         "seconds": time.perf_counter() - start})
            print(f"  {task['name']} {method} seed {seed}: {runs[-1]}", flush=True)
        results[method] = {key: [r[key] for r in runs] for key in runs[0]}
    return results


def vision_task(args, targets) -> dict:
    from flaxzoo.interpret import capture, data

    model = cli.load_weights(args.vision_weights)
    channels = model.patch_embed.in_chans
    fit_in = data.load("offline:textures", count=400, channels=channels, split="train")
    held_in = data.load("offline:textures", count=200, channels=channels, split="test")
    fit = capture.capture(model, args.vision_layer, fit_in.x, batch_size=50)
    held = capture.capture(model, args.vision_layer, held_in.x, batch_size=50)
    base = held_in.x[np.concatenate([np.flatnonzero(held_in.labels == c)[:4] for c in range(10)])]
    return {"name": "vision", "num_concepts": 10, "sparsity": args.vision_sparsity,
            "fit": {"A": np.asarray(fit.A), "example": fit.meta["example"], "labels": fit_in.labels},
            "held": {"A": np.asarray(held.A), "example": held.meta["example"], "labels": held_in.labels},
            "steerer": capture.Steerer(model, args.vision_layer), "base_x": base, "readout": lambda y: y,
            "mass": lambda c: (lambda p: p[:, c])}


def text_task(args, targets) -> dict:
    from flaxzoo.interpret import capture, data
    from flaxzoo.interpret import evaluation as E

    model = cli.load_weights(args.text_weights)
    ids, labels, names = data.pydoc_topics(20, 10, 64)
    fit_rows = np.concatenate([np.flatnonzero(labels == c)[:6] for c in range(20)])
    held_rows = np.concatenate([np.flatnonzero(labels == c)[6:] for c in range(20)])
    fit = capture.capture(model, args.text_layer, ids[fit_rows], batch_size=40)
    held = capture.capture(model, args.text_layer, ids[held_rows], batch_size=40)
    base = ids[held_rows[::10], :32]  # 8 prompts of 32 characters from different topics
    char_sets = [E.characteristic_tokens(ids[fit_rows], labels[fit_rows], c) for c in range(20)]
    return {"name": "text", "num_concepts": 20, "sparsity": args.text_sparsity,
            "fit": {"A": np.asarray(fit.A), "example": fit.meta["example"], "labels": labels[fit_rows]},
            "held": {"A": np.asarray(held.A), "example": held.meta["example"], "labels": labels[held_rows]},
            "steerer": capture.Steerer(model, args.text_layer), "base_x": base, "readout": lambda y: y[:, -1],
            "mass": lambda c: (lambda p: p[:, char_sets[c]].sum(-1)), "topics": names}


def table(results: dict, targets) -> str:
    cols = ["AUROC"] + [f"rise@KL{t}" for t in targets] + ["hit"]
    lines = ["| task | method | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 3)]
    for task, per_method in results.items():
        for method, r in per_method.items():
            fmt = lambda v: "n/a" if np.all(np.isnan(v)) else (  # noqa: E731
                f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}")
            hits = "/".join(str(int(np.mean(r[f"hit@{t}"]))) for t in targets)
            lines.append(f"| {task} | {method} | {len(r['auroc'])} | {fmt(r['auroc'])} | "
                         + " | ".join(fmt(r[f"rise@{t}"]) for t in targets) + f" | {hits} |")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.solver_timing:
        try:
            d, n, k, iters = (int(v) for v in args.solver_timing.split(","))
        except ValueError:
            raise cli.UsageError(f"--solver-timing takes D,N,K,ITERS, e.g. 3072,20000,100,20; got "
                                 f"{args.solver_timing!r}.") from None
        # a fresh process, so the peak memory is this fit's alone
        out = subprocess.run([sys.executable, "-m", "flaxzoo.interpret.timing", str(d), str(n), str(k), str(iters)],
                             capture_output=True, text=True, check=True).stdout
        print(out.strip().splitlines()[-1])
        return cli.EXIT_OK
    if not args.vision_weights and not args.text_weights:
        raise cli.UsageError("pass --vision-weights and/or --text-weights (training run workdirs), or "
                             "--solver-timing.")
    if args.json and os.path.exists(args.json) and not args.overwrite:
        raise cli.UsageError(f"{args.json} exists; pass --overwrite to replace it.")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        targets = [float(t) for t in args.targets.split(",")]
    except ValueError:
        raise cli.UsageError("--seeds and --targets are comma-separated numbers, e.g. 0,1,2 and 0.1,0.25.") from None
    results = {}
    for weights, make in ((args.vision_weights, vision_task), (args.text_weights, text_task)):
        if weights:
            task = make(args, targets)
            results[task["name"]] = evaluate_task(task, seeds, targets, args)
            task["steerer"].close()
    print(table(results, targets))
    if args.json:
        from flaxzoo.files import write_atomic

        write_atomic(args.json, json.dumps({"results": results, "seeds": seeds, "targets": targets}, indent=1))
    return cli.EXIT_OK


def main(argv=None) -> int:
    return cli.call(run, argv)
