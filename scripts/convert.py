"""Convert a reference checkpoint (timm/Microsoft Swin, official MAXIM, UoE authors') into
flaxzoo-native safetensors for any registered model that has a converter.

    python scripts/convert.py swin_tiny_patch4_window7_224 swin_tiny.safetensors swin_tiny_flaxzoo.safetensors
    python scripts/convert.py swin_base_patch4_window7_224 ckpt.pth out.safetensors --num-classes 21841
    python scripts/convert.py swin_test_tiny src.npz out.safetensors --set window_size=8 --set drop_path_rate=0.2

SRC may be .safetensors, .npz, or a torch .pth/.pt/.bin (read with weights_only=True; needs
torch). Load the result with `flaxzoo.load_pretrained(MODEL_NAME, DST)`.
"""
from __future__ import annotations

import argparse
import ast
import math
import sys


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value  # plain strings need no quotes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="registered model name (see flaxzoo.list_models())")
    parser.add_argument("src", help="reference checkpoint: .safetensors, .npz or torch .pth/.pt/.bin")
    parser.add_argument("dst", help="output flaxzoo-native .safetensors file")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size, if it differs from the preset")
    parser.add_argument("--set", dest="overrides", action="append", type=_parse_override, default=[],
                        metavar="KEY=VALUE", help="any other constructor override (Python literal), repeatable")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    args = parser.parse_args(argv)

    if not args.dst.lower().endswith(".safetensors"):
        parser.error(f"DST must end in .safetensors, got {args.dst!r}")

    import flaxzoo
    from flaxzoo.models.convert.common import model_param_shapes, save_params

    overrides = dict(args.overrides)
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    try:
        model = flaxzoo.load_pretrained(args.model, args.src, **overrides)
        save_params(model, args.dst, model_name=args.model, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    shapes = model_param_shapes(model)
    total = sum(math.prod(s) for s in shapes.values())
    print(f"{args.model}: {len(shapes)} tensors, {total:,} parameters -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
