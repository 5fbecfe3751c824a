"""Convert a reference checkpoint (timm/Microsoft Swin, official MAXIM, UoE authors') into
flaxzoo-native safetensors for any registered model that has a converter.

    flaxzoo-convert swin_tiny_patch4_window7_224 swin_tiny.safetensors swin_tiny_flaxzoo.safetensors
    flaxzoo-convert swin_base_patch4_window7_224 ckpt.pth out.safetensors --num-classes 21841
    flaxzoo-convert swin_test_tiny src.npz out.safetensors --set window_size=8 --set drop_path_rate=0.2

(`python scripts/convert.py ...` is the same program.) SRC may be .safetensors, .npz, or a torch
.pth/.pt/.bin (read with weights_only=True; needs torch). Load the result with
`flaxzoo.load_pretrained(MODEL_NAME, DST)`. DST is never overwritten unless --overwrite.
"""
from __future__ import annotations

import ast
import math
import os

from flaxzoo import cli


def _parse_override(text: str) -> tuple[str, object]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise cli.UsageError(f"--set expects KEY=VALUE, e.g. --set window_size=8; got {text!r}.")
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value  # plain strings need no quotes


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("model", help="registered model name (see flaxzoo.list_models())")
    p.add_argument("src", help="reference checkpoint: .safetensors, .npz or torch .pth/.pt/.bin")
    p.add_argument("dst", help="output flaxzoo-native .safetensors file")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size, if it differs from the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other constructor override (Python literal), repeatable")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    return p


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.dst.lower().endswith(".safetensors"):
        raise cli.UsageError(f"DST must end in .safetensors, got {args.dst!r}.")
    if args.num_classes is not None and args.num_classes < 1:
        raise cli.UsageError(f"--num-classes {args.num_classes} must be >= 1.")
    overrides = dict(_parse_override(t) for t in args.overrides)
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes

    import flaxzoo
    from flaxzoo.models.convert.common import model_param_shapes, save_params
    from flaxzoo.train.config_check import check_model_kwargs

    check_model_kwargs(args.model, overrides)  # unknown model / argument (close matches), wrong types
    if not os.path.isfile(args.src):
        raise cli.UsageError(f"SRC {args.src} is not a file: pass a reference checkpoint (.safetensors, .npz, .pth).")
    if os.path.exists(args.dst) and not args.overwrite:
        raise cli.UsageError(f"DST {args.dst} exists: choose another name or pass --overwrite.")
    cli.check_readable(args.src, "SRC")
    try:
        model = flaxzoo.load_pretrained(args.model, args.src, **overrides)
    except cli.FILE_FORMAT_ERRORS as e:
        raise cli.UsageError(f"SRC {args.src} is not a readable checkpoint ({e or type(e).__name__}).") from e
    save_params(model, args.dst, model_name=args.model, overwrite=args.overwrite)
    shapes = model_param_shapes(model)
    total = sum(math.prod(s) for s in shapes.values())
    print(f"{args.model}: {len(shapes)} tensors, {total:,} parameters -> {args.dst}")
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
