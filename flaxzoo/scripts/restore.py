"""Restore a folder of images with MAXIM; writes one PNG per input.

    flaxzoo-restore --weights runs/maxim_denoise/model.safetensors --input noisy/ --output restored/
    flaxzoo-restore --model maxim_s3_denoising_sidd --weights checkpoint.npz --input noisy/ --output restored/ \\
        --tile 512 --overlap 64 --batch-size 2

(`python scripts/restore.py ...` is the same program.) --weights takes a training run's
model.safetensors or its workdir (the model is rebuilt from the file), a flaxzoo-native
.safetensors, or an official google-research/maxim checkpoint.npz (then --model names the preset).
Any size, grayscale, RGB or RGBA, 8 or 16 bit; --tile bounds memory for big images. An image that
cannot be read is reported and skipped, the rest are restored, and the exit code is 1 at the end.
Existing PNGs in --output are kept unless --overwrite.
"""
from __future__ import annotations

import fnmatch
import math
import os
import time

import numpy as np

from flaxzoo import cli
from flaxzoo.files import atomic_path

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True,
                   help="a training run's workdir or model.safetensors, flaxzoo .safetensors, or official .npz")
    p.add_argument("--model", default=None,
                   help="preset name, e.g. maxim_s3_denoising_sidd; needed only for official checkpoints")
    p.add_argument("--input", required=True, help="folder of images (or one image file)")
    p.add_argument("--output", required=True, help="folder for the restored PNGs (created if missing)")
    p.add_argument("--pattern", default=None,
                   help=f"only restore the input files matching this glob, e.g. '*.png' (default: {' '.join(EXTENSIONS)})")
    p.add_argument("--tile", type=int, default=None,
                   help="restore big images in tiles of this size (a multiple of the model's size multiple, "
                        "e.g. 256 or 512); default: whole images")
    p.add_argument("--overlap", type=int, default=None,
                   help="tile overlap in pixels, blended smoothly, at most tile/2 (default: 64, or tile/4 if smaller)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per jitted call")
    p.add_argument("--overwrite", action="store_true", help="replace PNGs that already exist in --output")
    return p


def check_arguments(args) -> list[str]:
    """Every argument that can be checked without the model; returns the input files."""
    if args.batch_size < 1:
        raise cli.UsageError(f"--batch-size {args.batch_size} must be >= 1 (tiles per call).")
    if args.tile is not None and args.tile < 1:
        raise cli.UsageError(f"--tile {args.tile} must be a positive size in pixels, e.g. --tile 256 "
                             f"(or leave it out to restore whole images).")
    if args.overlap is None:
        args.overlap = 64 if args.tile is None else min(64, args.tile // 4)
    if args.overlap < 0:
        raise cli.UsageError(f"--overlap {args.overlap} must be >= 0 pixels.")
    if args.tile is not None and args.overlap > args.tile // 2:
        raise cli.UsageError(f"--overlap {args.overlap} must be at most half the tile ({args.tile // 2} for "
                             f"--tile {args.tile}).")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise cli.UsageError(f"--output {args.output} is a file: pass a folder for the restored PNGs.")
    return input_files(args.input, args.pattern)


def input_files(path: str, pattern: str | None) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise cli.UsageError(f"--input {path} does not exist: pass a folder of images or one image file.")
    names = sorted(os.listdir(path))
    if pattern is not None:
        if not pattern or os.sep in pattern:
            raise cli.UsageError(f"--pattern {pattern!r} must be a file-name glob such as '*.png' (no folders).")
        chosen = [n for n in names if fnmatch.fnmatch(n, pattern)]
        what = f"matching --pattern {pattern!r}"
    else:
        chosen = [n for n in names if n.lower().endswith(EXTENSIONS)]
        what = f"with an image extension ({' '.join(EXTENSIONS)})"
    files = [os.path.join(path, n) for n in chosen if os.path.isfile(os.path.join(path, n))]
    if not files:
        raise cli.UsageError(f"--input {path} has no files {what}.")
    return files


def output_names(files: list[str]) -> dict[str, str]:
    """input path -> output PNG name, never the same name for two inputs (a.png and a.jpg)."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    shared = {s for s in stems if stems.count(s) > 1}
    names, taken = {}, set()
    for f, stem in zip(files, stems):
        base = os.path.basename(f) if stem in shared else stem  # a.png -> a.png.png, a.jpg -> a.jpg.png
        name, k = f"{base}.png", 2
        while name in taken:  # only possible for odd names such as a.jpg next to a.jpg.png
            name, k = f"{base}-{k}.png", k + 1
        taken.add(name)
        names[f] = name
    return names


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
    with atomic_path(path) as tmp:  # a half-written PNG never sits under the final name
        Image.fromarray(image).save(tmp, "PNG")




def make_restorer(model):
    """A Restorer that says when it compiles (once per input shape) and how far a tiled image is."""
    from flaxzoo.eval.restore import Restorer

    class ReportingRestorer(Restorer):
        def __init__(self, model):
            super().__init__(model)
            self.compiled, self.calls, self.total = set(), 0, 0

        def __call__(self, x):
            if x.shape not in self.compiled:
                print(f"  compiling for {x.shape[0]} x {x.shape[1]}x{x.shape[2]} inputs (once per input size; "
                      f"can take a minute)...", flush=True)
                self.compiled.add(x.shape)
            y = super().__call__(x)
            self.calls += 1
            if self.total > 1 and (self.calls == self.total or self.calls % max(1, self.total // 10) == 0):
                print(f"  tiles: {self.calls}/{self.total} batches", flush=True)  # about every 10%
            return y

    return ReportingRestorer(model)


def tile_batches(shape, multiple, tile: int | None, overlap: int, batch_size: int) -> int:
    """How many jitted calls restore_image makes for an image of this shape (for the progress line)."""
    from flaxzoo.eval.restore import tile_starts

    h, w = shape[:2]
    if tile is None or (h <= tile and w <= tile):
        return 1
    th, tw = (min(tile, -(-n // m) * m) for n, m in zip((h, w), multiple))
    boxes = len(tile_starts(max(h, th), th, overlap)) * len(tile_starts(max(w, tw), tw, overlap))
    return math.ceil(boxes / batch_size)


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    files = check_arguments(args)
    names = output_names(files)

    from PIL.Image import DecompressionBombError

    from flaxzoo.eval.restore import restore_image

    print(f"Loading {args.weights} ...", flush=True)
    model = cli.load_weights(args.weights, args.model, family="maxim")
    multiple = tuple(getattr(model, "size_multiple", (1, 1)))
    if args.tile is not None and (args.tile % multiple[0] or args.tile % multiple[1]):
        raise cli.UsageError(f"--tile {args.tile} must be a multiple of the model's size multiple {multiple}, "
                             f"e.g. --tile {max(multiple) * max(1, args.tile // max(multiple))}.")
    restorer = make_restorer(model)
    os.makedirs(args.output, exist_ok=True)  # only now: every argument has been checked

    failed, skipped = [], 0
    for i, path in enumerate(files, 1):
        dest = os.path.join(args.output, names[path])
        if os.path.exists(dest) and not args.overwrite:
            print(f"[{i}/{len(files)}] {dest} exists, skipped (pass --overwrite to replace it)")
            skipped += 1
            continue
        try:
            image = read_image(path)
        except (OSError, ValueError, DecompressionBombError) as e:  # PIL's UnidentifiedImageError is an OSError
            print(f"[{i}/{len(files)}] cannot read {path}, skipped: {cli.one_line(e)}", flush=True)
            failed.append(path)
            continue
        start = time.time()
        print(f"[{i}/{len(files)}] {path} {image.shape}", flush=True)
        restorer.calls, restorer.total = 0, tile_batches(image.shape, multiple, args.tile, args.overlap,
                                                         args.batch_size)
        try:
            out = restore_image(restorer, image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size)
        except ValueError as e:  # this image cannot be restored (e.g. an unsupported layout): the others can
            print(f"  cannot restore {path}, skipped: {cli.one_line(e)}", flush=True)
            failed.append(path)
            continue
        write_png(out, dest)
        print(f"  -> {dest} {time.time() - start:.1f}s", flush=True)
    done = len(files) - len(failed) - skipped
    print(f"Restored {done} of {len(files)} images into {args.output}"
          + (f"; {skipped} kept (already there)" if skipped else "")
          + (f"; {len(failed)} could not be read or restored: {', '.join(failed)}" if failed else ""))
    return cli.EXIT_FAILED if failed else cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
