"""Decompose one MLP layer of a flaxzoo model into semi-NMF features and write a report.

    flaxzoo-interpret --weights runs/swin_textures --layer layers.2.blocks.1.mlp --data offline:textures \\
        --k 50 --out reports/swin_l2
    flaxzoo-interpret --weights runs/uoe_lm_pydoc --layer blocks.1.mlp --data offline:pydoc --k 50 --out reports/lm
    flaxzoo-interpret --model swin_test_tiny --layer list          # the layer paths of a model

(`python scripts/interpret.py ...` is the same program.) Captures the layer's hidden activations
(after the nonlinearity; all experts together for UoME) over --data, fits A ~= Z Y (Y >= 0, Z
winner-take-all sparse over neurons), and writes into --out: features.json, report.html and, for
images, feature_NNN.png (each feature's top patches). --hierarchy 10,4 factors the k features
again with ranks 10 then 4 and adds the tree. An existing report is kept unless --overwrite.
"""
from __future__ import annotations

import os
import time

import numpy as np

from flaxzoo import cli


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None, help="preset name (random weights unless --weights)")
    p.add_argument("--weights", default=None, help="a training run's workdir or a weights file")
    p.add_argument("--layer", required=True, help="the MLP layer's parameter path; 'list' prints them")
    p.add_argument("--data", default=None,
                   help="offline:textures, offline:pydoc, offline:denoise, or a .npy file of inputs")
    p.add_argument("--count", type=int, default=200, help="number of images (image sources)")
    p.add_argument("--image-size", type=int, default=64, help="image side the model takes (offline:textures)")
    p.add_argument("--topics", type=int, default=20, help="offline:pydoc concepts (topics)")
    p.add_argument("--per-topic", type=int, default=10, help="offline:pydoc passages per topic")
    p.add_argument("--seq-len", type=int, default=64, help="offline:pydoc passage length in characters")
    p.add_argument("--k", type=int, default=50, help="number of features")
    p.add_argument("--sparsity", type=float, default=0.01,
                   help="fraction of neurons each feature keeps (the paper's 0.01; 1.0 = no winner-take-all)")
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--patience", type=int, default=200)
    p.add_argument("--init", default="random", choices=["random", "svd", "kmeans"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--hierarchy", default=None, help="coarser ranks after k, e.g. 10,4 (strictly decreasing)")
    p.add_argument("--finetune-steps", type=int, default=0, help="end-to-end Adam steps for --hierarchy")
    p.add_argument("--top", type=int, default=25, help="top inputs per feature")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", default=None, help="output folder (created)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    return p


def _model(args):
    import flaxzoo

    if args.weights:
        return cli.load_weights(args.weights, args.model), args.model or "weights"
    if not args.model:
        raise cli.UsageError("pass --model NAME, --weights FILE, or both.")
    return flaxzoo.create_model(args.model), args.model


def _input_channels(model) -> int:
    embed = getattr(model, "patch_embed", None)
    return getattr(embed, "in_chans", None) or 3


def _ranks(text: str | None, k: int) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        ranks = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise cli.UsageError(f"--hierarchy takes comma-separated ranks, e.g. 10,4; got {text!r}.") from None
    if any(a <= b for a, b in zip((k,) + ranks, ranks)) or min(ranks) < 1:
        raise cli.UsageError(f"--hierarchy ranks must decrease strictly below --k {k}; got {text}.")
    return (k,) + ranks


def causal_effect(model, path: str, x, Z: np.ndarray, alpha: float) -> np.ndarray | None:
    """(k, outputs) mean change of log-probabilities when alpha * z_i/||z_i|| steers the model (None: no logits)."""
    import jax

    from flaxzoo.interpret.capture import Steerer
    from flaxzoo.interpret.steering import unit

    steer = Steerer(model, path)
    try:
        base = np.asarray(steer(x))
        if not isinstance(base, np.ndarray) or base.ndim < 2:
            return None
        lp = lambda logits: np.asarray(jax.nn.log_softmax(logits, -1)).reshape(-1, logits.shape[-1])  # noqa: E731
        ref = lp(base)
        return np.stack([(lp(np.asarray(steer(x, unit(z), alpha))) - ref).mean(0) if np.any(z) else
                         np.zeros(ref.shape[1]) for z in Z.T])
    finally:
        steer.close()


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from flaxzoo.interpret import capture, data, features, hierarchical, report, snmf

    model, name = _model(args)
    if args.layer == "list":
        for path, layer in capture.mlp_layers(model).items():
            print(f"{path}  ({type(layer).__name__}, d_mlp {capture.hidden_width(layer)})")
        return cli.EXIT_OK
    if not args.data or not args.out:
        raise cli.UsageError("--data and --out are needed to fit (or pass --layer list to see the layers).")
    if os.path.exists(os.path.join(args.out, "features.json")) and not args.overwrite:
        raise cli.UsageError(f"{args.out} already holds a report; pass --overwrite to replace it, or another --out.")
    ranks = _ranks(args.hierarchy, args.k)
    layer = capture.find_layer(model, args.layer)
    inputs = data.load(args.data, count=args.count, image_size=args.image_size, channels=_input_channels(model),
                       topics=args.topics, per_topic=args.per_topic, seq_len=args.seq_len)
    start = time.perf_counter()
    acts = capture.capture(model, args.layer, inputs.x, batch_size=args.batch_size)
    A = np.asarray(acts.A)
    print(f"captured {A.shape[0]} hidden units x {A.shape[1]} tokens from {args.layer} "
          f"in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    if ranks:
        tree_fit = hierarchical.fit(A, ranks, sparsity=args.sparsity, max_iter=args.max_iter,
                                    patience=args.patience, seed=args.seed, init=args.init,
                                    finetune_steps=args.finetune_steps)
        Z, Y, tree = tree_fit.features[0], tree_fit.Y, tree_fit.tree()
    else:
        result = snmf.fit(A, args.k, sparsity=args.sparsity, max_iter=args.max_iter, patience=args.patience,
                          init=args.init, seed=args.seed)
        Z, Y, tree = result.Z, result.Y, None
    error = float(np.linalg.norm(A - Z @ Y) / np.linalg.norm(A))
    print(f"fitted k={args.k} in {time.perf_counter() - start:.1f} s, relative error {error:.3f}")
    effect, method = features.direct_logit_effect(model, layer, Z), "readout: W_out z through final norm and head"
    if effect is None:
        alpha = float(np.median(np.linalg.norm(A, axis=0)))
        effect = causal_effect(model, args.layer, inputs.x[:16], Z, alpha)
        method = f"causal: mean change of log-probabilities, steering with alpha={alpha:.3g}"
    if effect is None:
        method = "none (the model has no class or vocabulary output)"
    os.makedirs(args.out, exist_ok=True)
    described = report.describe(model, layer, acts, Z, Y, inputs, top=args.top, output_effect=effect,
                                output_method=method)
    if inputs.kind == "image":
        report.write_grids(args.out, described, inputs, acts)
    summary = {"model": name, "layer": args.layer, "data": args.data, "k": args.k, "sparsity": args.sparsity,
               "tokens": int(A.shape[1]), "d_mlp": int(A.shape[0]), "relative_error": error,
               "convention": "A (d_mlp x tokens) ~= Z Y; Y >= 0 (coefficients); Z mixed sign, WTA-sparse (features)"}
    report.write(args.out, summary, described, tree)
    print(f"wrote {os.path.join(args.out, 'features.json')} and report.html ({len(described)} features)")
    return cli.EXIT_OK


def main(argv=None) -> int:
    return cli.call(run, argv)
