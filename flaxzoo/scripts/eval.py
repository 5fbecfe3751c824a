"""Evaluate a model on a benchmark split and compare with the published figure.

    flaxzoo-eval --model maxim_s3_denoising_sidd --weights checkpoint.npz --data tfds:sidd/validation \\
        --out eval/sidd [--protocol sidd] [--ensemble] [--tile 512]
    flaxzoo-eval --model swin_tiny_patch4_window7_224 --weights swin_tiny_patch4_window7_224.pth \\
        --data tfds:imagenet2012/validation --out eval/swin_t
    flaxzoo-eval --weights runs/uoe_lm/model.safetensors --data offline:pydoc/test --out eval/uoe

(`python scripts/eval.py ...` is the same program.) The task follows the model: MAXIM -> restoration
(per-image PSNR/SSIM with the dataset's protocol, `flaxzoo.eval.protocols`; x8 self-ensemble; tiling),
Swin (and UoE ViTs) -> classification (top-1/top-5, per-class accuracy, confusions; the timm eval preprocessing of the
model's pretrained cfg), UoE LMs -> language modelling (loss, perplexity, bits per byte); `--task` overrides it.
--data is <source>/<split>: tfds:<name>/<split> (our restoration benchmarks: prepare them first with
`python -m flaxzoo.data.benchmarks NAME --manual-dir DIR`), folder:pairs/<split> (with --data-dir),
offline:<set>/<split>. Writes into --out: summary.json, per_image.csv and grid.png (restoration: the worst
and best images, input / output / target) or per_class.csv (classification). An existing, non-empty --out is
refused unless --overwrite.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

from flaxzoo import cli

TASK_OF_FAMILY = {"maxim": "restore", "swin": "classify"}  # UoE presets name theirs (lm or classify)


def default_task(spec) -> str | None:
    """The evaluation a preset's spec implies: its info['task'] ('classify', 'lm'; MAXIM's 'denoising',
    'deblurring', ... are restoration), else its family's."""
    task = spec.info.get("task")
    if task in ("classify", "lm"):
        return task
    return "restore" if spec.family == "maxim" else TASK_OF_FAMILY.get(spec.family)


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True, help="a training run's workdir or model.safetensors, flaxzoo "
                                                    ".safetensors, an official MAXIM .npz or a timm/Microsoft .pth")
    p.add_argument("--model", default=None, help="preset name (needed for official checkpoints), e.g. "
                                                 "maxim_s3_denoising_sidd")
    p.add_argument("--data", required=True, help="<source>/<split>, e.g. tfds:sidd/validation")
    p.add_argument("--data-dir", default=None, help="TFDS data folder (or the folder of folder:pairs)")
    p.add_argument("--out", required=True, help="folder for summary.json and the per-image / per-class files")
    p.add_argument("--task", choices=("restore", "classify", "lm"), default=None,
                   help="default: from the model (MAXIM: restore, Swin and UoE ViTs: classify, UoE LMs: lm)")
    p.add_argument("--protocol", default=None, help="restoration scoring protocol (default: the dataset's; "
                                                    "see flaxzoo.eval.protocols), e.g. sidd, rain, official")
    p.add_argument("--ensemble", action="store_true", help="x8 geometric self-ensemble (8x the compute)")
    p.add_argument("--tile", type=int, default=None, help="restore big images in tiles of this size")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap (default: 64, or tile/4 if smaller)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="tiles per call (restore, default 1); images (classify, default 32) or windows (lm, 8)")
    p.add_argument("--seq-len", type=int, default=128, help="lm: window length in tokens")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N examples (lm: batches)")
    p.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty --out")
    return p


def parse_data(data: str) -> tuple[str, str, str]:
    """'tfds:sidd/validation' -> ('tfds:sidd', 'sidd', 'validation')."""
    kind, _, rest = data.partition(":")
    source, _, split = rest.rpartition("/")
    if not kind or not source or not split:
        raise cli.UsageError(f"--data {data!r} must be <source>/<split>, e.g. tfds:sidd/validation, "
                             f"tfds:imagenet2012/validation, folder:pairs/test or offline:pydoc/test.")
    return f"{kind}:{source}", source, split


def check_arguments(args) -> None:
    for flag, value in (("--limit", args.limit), ("--seq-len", args.seq_len - 1)):
        if value < 0:
            raise cli.UsageError(f"{flag} must be >= {0 if flag == '--limit' else 1}.")
    if args.batch_size is not None and args.batch_size < 1:
        raise cli.UsageError(f"--batch-size {args.batch_size} must be >= 1.")
    if args.tile is not None and args.tile < 1:
        raise cli.UsageError(f"--tile {args.tile} must be a positive size in pixels, e.g. --tile 512.")
    if args.overlap is None:
        args.overlap = 64 if args.tile is None else min(64, args.tile // 4)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise cli.UsageError(f"--out {args.out} is a file: pass a folder.")
    if os.path.isdir(args.out) and os.listdir(args.out) and not args.overwrite:
        raise cli.UsageError(f"--out {args.out} already holds files: pass another folder, or --overwrite to "
                             f"replace the evaluation files in it.")
    if args.protocol is not None:
        from flaxzoo.eval import protocols

        protocols.get(args.protocol)


def open_source(source_name: str, dataset: str, split: str, data_dir: str | None):
    """make_source, with the way to prepare our benchmark builders when one is not prepared."""
    from flaxzoo.data import benchmarks
    from flaxzoo.data.pipeline import make_source

    try:
        return make_source(source_name, split, data_dir=data_dir)
    except ValueError as e:
        if not source_name.startswith("tfds:") or dataset not in benchmarks.BUILDERS:
            raise
        raise cli.UsageError(f"Benchmark {dataset!r} split {split!r} is not prepared in "
                             f"{data_dir or '~/tensorflow_datasets'}: run python -m flaxzoo.data.benchmarks {dataset} "
                             f"--manual-dir DIR{f' --data-dir {data_dir}' if data_dir else ''} (without --manual-dir "
                             f"it prints the layout and download page).") from e


def model_name(args) -> str:
    recorded = cli.check_readable(cli.resolve_weights(args.weights), "--weights")
    return args.model or recorded or ""


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    source_name, dataset, split = parse_data(args.data)

    import flaxzoo

    source = open_source(source_name, dataset, split, args.data_dir)  # a missing dataset fails before the model
    name = model_name(args)
    if not name:
        raise cli.UsageError(f"--weights {args.weights} does not record its model: pass --model NAME.")
    spec = flaxzoo.get_spec(name)
    task = args.task or default_task(spec)
    if task is None:
        raise cli.UsageError(f"No default evaluation for {name}: pass --task restore|classify|lm.")
    if task != "restore" and (args.ensemble or args.tile or args.protocol):
        raise cli.UsageError("--protocol, --ensemble and --tile are for restoration (--task restore).")
    print(f"Loading {args.weights} ({name}) ...", flush=True)
    model = cli.load_weights(args.weights, args.model)
    header = {"model": name, "weights": os.path.abspath(args.weights), "data": args.data, "task": task,
              "command": " ".join(shlex.quote(a) for a in ["flaxzoo-eval", *argv]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.makedirs(args.out, exist_ok=True)  # only now: every argument has been checked
    evaluate = {"restore": _restore, "classify": _classify, "lm": _lm}[task]
    return evaluate(args, model, name, source, dataset, split, header)


def _progress(every: int):
    def report(done, total, record=None):
        if total is None or done == total or done % every == 0:
            extra = f" {record['name']}: {record['psnr']:.2f} dB" if record else ""
            print(f"  [{done}/{total if total is not None else '?'}]{extra}", flush=True)
    return report


def _published_line(ours: str, published: dict | None, theirs: str) -> str:
    if not published:
        return f"{ours}   (no published figure for this model and split)"
    return f"{ours}   published: {theirs}   ({published['source']})"


def _restore(args, model, name, source, dataset, split, header) -> int:
    from flaxzoo.eval import protocols, published, report, restoration

    protocol = protocols.get(args.protocol) if args.protocol else protocols.for_dataset(dataset)
    total = min(len(source), args.limit) if args.limit else len(source)
    print(f"Restoring {total} images of {args.data} (protocol {protocol.name}: {protocol.note}"
          f"{'; x8 ensemble' if args.ensemble else ''}) ...", flush=True)
    result = restoration.evaluate(model, source, protocol, ensemble=args.ensemble, tile=args.tile,
                                  overlap=args.overlap, batch_size=args.batch_size or 1, limit=args.limit,
                                  progress=_progress(max(1, total // 10)))
    ref = published.lookup(name, dataset, split)
    summary = {**header, **result.summary, "published": ref}
    report.write_csv(os.path.join(args.out, "per_image.csv"), result.records)
    report.write_json(os.path.join(args.out, "summary.json"), summary)
    rows = [(f"worst {k + 1}: {r['name']}\n{r['psnr']:.2f} dB", [r["input"], r["output"], r["target"]])
            for k, r in enumerate(result.worst)]
    rows += [(f"best {k + 1}: {r['name']}\n{r['psnr']:.2f} dB", [r["input"], r["output"], r["target"]])
             for k, r in enumerate(result.best)]
    report.write_grid(os.path.join(args.out, "grid.png"), rows, columns=("input", "output", "target"))
    s = result.summary
    ours = f"{name} on {args.data}: PSNR {s['psnr']:.2f} dB" + (f", SSIM {s['ssim']:.4f}" if "ssim" in s else "") \
        + f" over {s['count']} images"
    theirs = f"{ref['psnr']:.2f} dB, SSIM {ref['ssim']:.3f}" if ref else ""
    print(_published_line(ours, ref, theirs))
    if s["count"] < len(source):
        print(f"note: --limit {args.limit}: {s['count']} of the split's {len(source)} images; published figures are "
              f"over the whole split.")
    print(f"Wrote {args.out}/summary.json, per_image.csv, grid.png")
    return cli.EXIT_OK


def _classify(args, model, name, source, dataset, split, header) -> int:
    from flaxzoo.eval import classification, published, report

    total = min(len(source), args.limit) if args.limit else len(source)
    print(f"Classifying {total} images of {args.data} ...", flush=True)
    batch = args.batch_size or 32
    result = classification.evaluate(model, source, model_name=name, batch_size=batch, limit=args.limit,
                                     progress=_progress(max(batch, total // 10 // batch * batch)))
    ref = published.lookup(name, dataset, split)
    per_class = [{"class": c, **v} for c, v in sorted(result.pop("per_class").items())]
    report.write_csv(os.path.join(args.out, "per_class.csv"), per_class)
    report.write_json(os.path.join(args.out, "summary.json"), {**header, **result, "published": ref})
    ours = f"{name} on {args.data}: top-1 {100 * result['top1']:.2f}%, top-5 {100 * result['top5']:.2f}% " \
           f"over {result['count']} images"
    theirs = f"top-1 {ref['top1']:.1f}%" + (f", top-5 {ref['top5']:.1f}%" if "top5" in (ref or {}) else "") \
        if ref else ""
    print(_published_line(ours, ref, theirs))
    print(f"Wrote {args.out}/summary.json, per_class.csv")
    return cli.EXIT_OK


def _lm(args, model, name, source, dataset, split, header) -> int:
    from flaxzoo.data.pipeline import make_dataset
    from flaxzoo.eval import language, report

    batch = args.batch_size or 8
    tfds_text = source_is_text(source)
    pp = {"seq_len": args.seq_len} if tfds_text else {}
    ds = make_dataset(source, preprocess="bytes_lm" if tfds_text else "tokens", global_batch=batch, seed=0,
                      train=False, **pp)
    print(f"Scoring {args.data} ...", flush=True)
    from flaxzoo.data.text import ByteTokenizer

    byte_level = tfds_text or isinstance(getattr(source, "vocab", None), ByteTokenizer)
    result = language.evaluate(model, ds, batch_size=batch, byte_level=byte_level, limit=args.limit)
    report.write_json(os.path.join(args.out, "summary.json"), {**header, **result})
    bpb = f", {result['bits_per_byte']:.4f} bits/byte" if "bits_per_byte" in result else ""
    print(f"{name} on {args.data}: loss {result['loss']:.4f}, perplexity {result['perplexity']:.3f}{bpb} over "
          f"{result['tokens']} tokens   (UoE's paper reports relative results only: see flaxzoo.eval.published)")
    print(f"Wrote {args.out}/summary.json")
    return cli.EXIT_OK


def source_is_text(source) -> bool:
    """A text dataset (documents to byte-tokenise and pack) rather than ready token windows."""
    example = source[0]
    return "tokens" not in example and "text" in example


def main(argv: list[str] | None = None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    sys.exit(main())
