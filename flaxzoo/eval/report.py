"""Evaluation reports: a per-image CSV, summary.json and a picture grid, written atomically.

Nothing is ever half-written or silently replaced: every file goes through `flaxzoo.files.atomic_path`;
the CLI (`flaxzoo-eval`) refuses an existing output folder unless `--overwrite`.
"""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from flaxzoo.files import atomic_path, write_atomic


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/NaN: "inf" (PSNR of identical images)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def write_json(path: str, data: dict) -> None:
    write_atomic(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def write_csv(path: str, records: list[dict]) -> None:
    """One row per record; columns in the order of the first record's keys."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    write_atomic(path, buf.getvalue())


def _thumb(image: np.ndarray, height: int):
    from PIL import Image

    im = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    width = max(1, round(im.width * height / im.height))
    return im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC if im.height > height
                                    else Image.Resampling.NEAREST)


def write_grid(path: str, rows: list[tuple[str, list[np.ndarray]]], *, columns: tuple[str, ...],
               height: int = 160) -> None:
    """A PNG: one row per (label, images), each image scaled to `height`, with column titles on top."""
    from PIL import Image, ImageDraw

    pad, title = 4, 16
    thumbs = [[_thumb(im, height) for im in images] for _, images in rows]
    widths = [max(t[c].width for t in thumbs) for c in range(len(columns))]
    label_w = 7 * max(len(line) for label, _ in rows for line in label.split("\n")) + 2 * pad
    canvas = Image.new("RGB", (label_w + sum(widths) + pad * (len(widths) + 1),
                               title + len(rows) * (height + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    x = label_w + pad
    for name, w in zip(columns, widths):
        draw.text((x, 2), name, fill="black")
        x += w + pad
    for r, ((label, _), row) in enumerate(zip(rows, thumbs)):
        y = title + r * (height + pad)
        for i, line in enumerate(label.split("\n")):
            draw.text((pad, y + 2 + 12 * i), line, fill="black")
        x = label_w + pad
        for t, w in zip(row, widths):
            canvas.paste(t, (x, y))
            x += w + pad
    with atomic_path(path) as tmp:
        canvas.save(tmp, "PNG")
