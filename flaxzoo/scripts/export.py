"""Export a model as an artefact that runs without flaxzoo, and check it against the model.

    flaxzoo-export --model maxim_tiny --format jax --size 64x64 --dynamic batch,height,width --out maxim.jaxexport
    flaxzoo-export --model swin_tiny_patch4_window7_224 --weights swin.safetensors --format onnx --size 224x224 \\
        --out swin.onnx
    flaxzoo-export --model uoe_lm_tiny --format jax --size 16 --dynamic "" --out lm.jaxexport   # token models: --size LENGTH

(`python scripts/export.py ...` is the same program.) Without --weights the model has random weights
(fine for trying the path, not for deployment). --preprocess puts the pre/post-processing in the
artefact (restorers: uint8 images of any size in and out; classifiers: uint8 in, normalised inside).
The artefact is run in a fresh Python process that does not import flaxzoo, on a check input, and the
largest difference against the JAX model is printed. An existing --out is never replaced.
"""
from __future__ import annotations

import os

import numpy as np

from flaxzoo import cli


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="registered model name (flaxzoo.list_models())")
    p.add_argument("--weights", default=None, help="weights file or training workdir (default: random weights)")
    p.add_argument("--format", required=True, choices=("jax", "onnx", "tflite"))
    p.add_argument("--size", required=True, help="check-input size: HxW for image models, LENGTH for token models")
    p.add_argument("--batch", type=int, default=1, help="batch size of the check input (default 1)")
    p.add_argument("--dynamic", default="batch",
                   help="comma-separated symbolic axes: batch,height,width (images) or batch,length (tokens); "
                        "'' for none (default: batch)")
    p.add_argument("--preprocess", action="store_true", help="include pre/post-processing (raw uint8 images in)")
    p.add_argument("--quantize", choices=("fp16", "int8"), default=None, help="TFLite only: fp16 or dynamic-range int8")
    p.add_argument("--out", required=True, help="artefact file (.jaxexport, .onnx or .tflite); never overwritten")
    return p


def parse_size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(s) for s in text.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) not in (1, 2) or min(size) < 1:
        raise cli.UsageError(f"--size {text!r} must be HxW (e.g. 64x64) for image models or LENGTH (e.g. 128) "
                             f"for token models.")
    return size


def check_input(model, size, batch: int, preprocess: bool) -> np.ndarray:
    from flaxzoo.export import image_channels, input_dtype
    from flaxzoo.export.program import model_kind

    kind, rng = model_kind(model), np.random.default_rng(0)
    if kind == "tokens":
        if len(size) != 1:
            raise cli.UsageError(f"--size for a token model is the sequence LENGTH (e.g. --size 128); got {size}.")
        return rng.integers(0, model.embed.num_embeddings, (batch, size[0])).astype(np.int32)
    if len(size) != 2:
        raise cli.UsageError(f"--size for an image model is HxW (e.g. --size 64x64); got {size[0]}.")
    shape = (batch, *size, image_channels(model) or 3)
    if input_dtype(model, preprocess) == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.random(shape).astype(np.float32)


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if os.path.exists(args.out):
        raise cli.UsageError(f"--out {args.out} exists; choose another file (exported artefacts are never replaced).")
    size = parse_size(args.size)
    if args.batch < 1:
        raise cli.UsageError(f"--batch {args.batch} must be >= 1.")

    import time

    import jax

    import flaxzoo
    from flaxzoo import export as fx

    model = cli.load_weights(args.weights, args.model) if args.weights else flaxzoo.create_model(args.model)
    x = check_input(model, size, args.batch, args.preprocess)
    start = time.time()
    print(f"Exporting {args.model} as {args.format} for inputs like {x.shape} {x.dtype} "
          f"(symbolic: {args.dynamic or 'none'}) ...", flush=True)
    data = fx.export(model, x.shape, format=args.format, dynamic=args.dynamic, preprocess=args.preprocess,
                     quantize=args.quantize, path=args.out)
    print(f"Wrote {args.out}: {len(data) / 2**20:.2f} MiB in {time.time() - start:.1f}s", flush=True)
    (y,), info = fx.run_fresh(args.out, [x])
    want = np.asarray(jax.jit(fx.reference_function(model, preprocess=args.preprocess))(x))
    diff = float(np.max(np.abs(y.astype(np.float64) - want.astype(np.float64))))
    print(f"Checked in a fresh process (flaxzoo imported there: {info['flaxzoo_imported']}): output {y.shape} "
          f"{y.dtype}, max |artefact - JAX model| = {diff:.3g}")
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
