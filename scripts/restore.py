#!/usr/bin/env python
"""Restore a folder of images with a MAXIM preset and its weights; writes PNGs.

  python scripts/restore.py --model maxim_s3_denoising_sidd --weights checkpoint.npz \
      --input noisy/ --output restored/ [--tile 512 --overlap 64 --batch-size 2]

--weights takes an official google-research/maxim checkpoint.npz or a flaxzoo-native
.safetensors file. Any size, grayscale, RGB or RGBA; --tile bounds memory for big images.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(im, dtype=np.uint16)
        if im.mode not in ("L", "RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        return np.asarray(im)


def write_png(image: np.ndarray, path: str) -> None:
    from PIL import Image

    if image.dtype == np.uint16 and image.ndim == 3:  # PIL has no 16-bit RGB: store 8-bit
        image = (image // 257).astype(np.uint8)
    Image.fromarray(image).save(path, "PNG")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="preset name, e.g. maxim_s3_denoising_sidd (see list_models)")
    p.add_argument("--weights", required=True, help="official checkpoint.npz or flaxzoo-native .safetensors")
    p.add_argument("--input", required=True, help="folder of images (or one image file)")
    p.add_argument("--output", required=True, help="folder for the restored PNGs")
    p.add_argument("--tile", type=int, default=None, help="tile size (multiple of 64 for released models)")
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels, blended smoothly")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per jitted call")
    p.add_argument("--overwrite", action="store_true", help="replace PNGs that already exist in --output")
    args = p.parse_args(argv)

    from flaxzoo.eval.restore import Restorer, restore_image

    if os.path.isdir(args.input):
        files = sorted(os.path.join(args.input, f) for f in os.listdir(args.input) if f.lower().endswith(EXTENSIONS))
    elif os.path.isfile(args.input):
        files = [args.input]
    else:
        p.error(f"--input {args.input} is neither a folder nor a file")
    if not files:
        p.error(f"no images ({', '.join(EXTENSIONS)}) in {args.input}")
    os.makedirs(args.output, exist_ok=True)
    import flaxzoo

    # --weights: an official checkpoint.npz or flaxzoo-native safetensors
    restorer = Restorer(flaxzoo.load_pretrained(args.model, args.weights))
    for path in files:
        start = time.time()
        dest = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".png")
        if os.path.exists(dest) and not args.overwrite:
            print(f"{dest} exists, skipped (pass --overwrite to replace it)")
            continue
        out = restore_image(restorer, read_image(path), tile=args.tile, overlap=args.overlap,
                            batch_size=args.batch_size)
        write_png(out, dest)
        print(f"{path} -> {dest} {out.shape} {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
