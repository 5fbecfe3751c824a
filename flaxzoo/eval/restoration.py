"""The restoration evaluator: a model over a benchmark split, scored with the dataset's protocol.

    from flaxzoo.eval import protocols, restoration
    result = restoration.evaluate(model, examples, protocols.get("sidd"), ensemble=True, tile=512)
    result.summary   # {"psnr", "ssim", "count", ...};  result.records: one dict per image

`examples`: an iterable of {"input", "target"} (uint8 or float [0, 1], (H, W, C)) and optionally "name",
e.g. a `tfds.data_source` of our benchmark builders (`flaxzoo.data.benchmarks`). Each input is padded and
cropped back the official way and, for big images, tiled (`flaxzoo.eval.restore.restore_array`, the same
code as `flaxzoo-restore`). `ensemble=True` is the x8 geometric self-ensemble the MAXIM repo meant to ship
(its flag is broken): the mean of the model's outputs on the 8 flips/rotations, each mapped back (8x the
compute; a non-square image also compiles its rotated shape once).
The evaluator keeps the `keep` worst and best images (by PSNR) for the report's picture grid.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from flaxzoo.eval.protocols import Protocol
from flaxzoo.eval.restore import Restorer, check_tiling, restore_array
from flaxzoo.validate import InputError


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 flips/rotations of an (H, W, C) image: rotate by k % 4 quarter turns, then flip
    left-right if k >= 4."""
    y = np.rot90(x, k % 4, axes=(0, 1))
    return np.ascontiguousarray(y[:, ::-1] if k >= 4 else y)


def dihedral_inverse(y: np.ndarray, k: int) -> np.ndarray:
    """Undo `dihedral(., k)`."""
    y = y[:, ::-1] if k >= 4 else y
    return np.ascontiguousarray(np.rot90(y, -(k % 4), axes=(0, 1)))


def restore(restorer: Restorer, x: np.ndarray, *, ensemble: bool = False, tile: int | None = None,
            overlap: int = 64, batch_size: int = 4) -> np.ndarray:
    """float32 (H, W, C) -> the restored image, unclipped; the x8 self-ensemble mean if `ensemble`."""
    run = lambda im: restore_array(restorer, im, tile=tile, overlap=overlap, batch_size=batch_size)  # noqa: E731
    if not ensemble:
        return run(x)
    return np.mean([dihedral_inverse(run(dihedral(x, k)), k) for k in range(8)], axis=0)


def as_unit_float(image, what: str) -> np.ndarray:
    """uint8 / uint16 / float [0, 1] (H, W[, C]) -> float32 (H, W, C) in [0, 1]."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InputError(f"{what} must be an (H, W[, C]) image, got shape {arr.shape}.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32)
    raise InputError(f"{what} has dtype {arr.dtype}; benchmark images are uint8, uint16 or float in [0, 1].")


def example_name(example: dict, index: int) -> str:
    name = example.get("name", None)
    if name is None:
        return f"{index:05d}"
    name = name.item() if isinstance(name, np.ndarray) else name
    return name.decode() if isinstance(name, bytes) else str(name)


@dataclasses.dataclass
class Result:
    summary: dict
    records: list[dict]
    worst: list[dict]  # {"name", "psnr", "input", "output", "target"} (uint8), worst first
    best: list[dict]  # best first


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def evaluate(model_or_restorer, examples, protocol: Protocol, *, ensemble: bool = False, tile: int | None = None,
             overlap: int = 64, batch_size: int = 4, limit: int = 0, keep: int = 3, progress=None) -> Result:
    """Score every example (the first `limit` if > 0); see the module docstring."""
    restorer = model_or_restorer if isinstance(model_or_restorer, Restorer) else Restorer(model_or_restorer)
    check_tiling(tile, overlap, batch_size, restorer.size_multiple)
    records, kept = [], []
    start = time.time()
    total = _count(examples, limit)
    for i, example in _enumerate(examples, limit):
        for key in ("input", "target"):
            if key not in example or np.size(example[key]) == 0:
                raise InputError(f"Example {i} has no {key!r} (keys {sorted(example)}): a restoration benchmark "
                                 f"needs 'input' and 'target' images (flaxzoo.data.benchmarks builds them). Splits "
                                 f"without public ground truth (sidd/benchmark, dnd) are scored by their online "
                                 f"servers: restore them with flaxzoo-restore and submit.")
        x = as_unit_float(example["input"], f"example {i} 'input'")
        target = as_unit_float(example["target"], f"example {i} 'target'")
        if x.shape != target.shape:
            raise InputError(f"Example {i}: input {x.shape} and target {target.shape} differ in shape.")
        y = restore(restorer, x, ensemble=ensemble, tile=tile, overlap=overlap, batch_size=batch_size)
        if not np.isfinite(y).all():
            raise FloatingPointError(f"The model produced NaN or infinite values on example {i}; check the weights.")
        lo, hi = float(y.min()), float(y.max())
        if lo < -0.5 or hi > 1.5:  # far outside [0, 1]: not a restoration of this image, whatever the protocol
            raise InputError(f"The model's output on example {i} ({example_name(example, i)}) has values in "
                             f"[{lo:.3g}, {hi:.3g}], far outside the image range [0, 1]: the weights do not fit this "
                             f"model or task (untrained, or a checkpoint for another preset).")
        scores = protocol.score(target, y)
        record = {"index": i, "name": example_name(example, i), "height": x.shape[0], "width": x.shape[1], **scores}
        records.append(record)
        if keep:
            kept.append({**record, "input": _to_uint8(x), "output": _to_uint8(y), "target": _to_uint8(target)})
            kept.sort(key=lambda r: r["psnr"])
            if len(kept) > 2 * keep:  # drop the middle: only the extremes are drawn
                del kept[keep:len(kept) - keep]
        if progress:
            progress(i + 1, total, record)
    if not records:
        raise InputError("The benchmark split has no examples: check --data (and --limit).")
    summary = summarize(records, protocol, ensemble=ensemble, tile=tile, seconds=time.time() - start)
    worst, best = kept[:keep], kept[::-1][:keep]
    if len(kept) < 2 * keep:  # few images: show each once
        worst, best = kept[:(len(kept) + 1) // 2], kept[::-1][:len(kept) // 2]
    return Result(summary, records, worst, best)


def _count(examples, limit: int) -> int | None:
    if not hasattr(examples, "__len__"):
        return None
    return min(len(examples), limit) if limit else len(examples)


def _enumerate(examples, limit: int):
    """(index, example) for a random-access source (tfds.data_source, a list) or any iterable."""
    if hasattr(examples, "__len__") and hasattr(examples, "__getitem__"):
        for i in range(_count(examples, limit)):
            yield i, examples[i]
        return
    for i, example in enumerate(examples):
        if limit and i >= limit:
            return
        yield i, example


def summarize(records: list[dict], protocol: Protocol, *, ensemble: bool, tile, seconds: float) -> dict:
    """Means over the images (the benchmark convention: per-image PSNR, then averaged)."""
    psnrs = np.array([r["psnr"] for r in records])
    summary = {"count": len(records), "psnr": float(psnrs.mean()), "psnr_min": float(psnrs.min()),
               "psnr_max": float(psnrs.max())}
    if "ssim" in records[0]:
        summary["ssim"] = float(np.mean([r["ssim"] for r in records]))
    summary.update(protocol=dataclasses.asdict(protocol), ensemble=bool(ensemble), tile=tile,
                   seconds=round(seconds, 2))
    return summary
