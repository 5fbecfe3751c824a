"""The default job's report: a trained denoiser against the noisy input and a classical denoiser, on held-out photos.

`make train` trains configs/maxim/default.py with the common loop, then calls `write_report(workdir)`, which
writes `<workdir>/report/`:

- `summary.json`: {"noisy", "classical", "model"}, each {"psnr", "ssim"} (means over the held-out crops), plus
  "details" (the images, the noise, the classical method and its tuned strength, the weights' step).
- `grid.png`: noisy | classical | model | clean, one held-out crop per row.

Held-out images: crops of the bundled test photos (`flaxzoo.data.offline.DENOISE_TEST`), which no training
crop comes from, each with its own fixed noise field (Gaussian, the run's sigma, unclipped as in training).
Every image is clipped to [0, 1] before it is scored, i.e. what a saved image would score; PSNR/SSIM are
`flaxzoo.eval.metrics` (RGB, no border crop).

The classical baseline is BM3D when the `bm3d` package is installed, else scikit-image's non-local means
(`denoise_nl_means`, fast mode, 5x5 patches, 13x13 search) given the true sigma; its filter strength h is
tuned on training crops (never on the held-out ones) over a small grid of multiples of sigma.
"""
from __future__ import annotations

import json
import os

import numpy as np

from flaxzoo.data import offline
from flaxzoo.data.degradations import degrade
from flaxzoo.eval import metrics
from flaxzoo.files import atomic_path, write_atomic

NLM_H_FACTORS = (0.4, 0.5, 0.6, 0.7, 0.8, 1.0)  # h = factor * sigma (scikit-image suggests ~0.8)
COLUMNS = ("noisy", "classical", "model", "clean")


def run_sigma(workdir: str) -> float:
    """The noise level the run trained on, from its recorded config."""
    path = os.path.join(workdir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
        return float(config["data"]["pp"]["sigma"])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} does not record data.pp.sigma ({e}); this is not a denoising run's workdir. "
                         f"Pass the workdir of a run of configs/maxim/default.py, or --sigma.") from None


def held_out(crop: int, count: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) float32 (count, crop, crop, 3) crops of the test photos, each with its own noise."""
    source = offline.DenoiseCrops("test", patch=crop, num=16 * count, seed=seed)
    clean = np.stack([source[i]["target"] for i in range(count)]).astype(np.float32) / 255.0
    noisy = np.stack([degrade(c, np.random.default_rng((seed, i)), sigma=sigma) for i, c in enumerate(clean)])
    return clean, noisy


def score(images: np.ndarray, clean: np.ndarray) -> dict:
    images = np.clip(images, 0.0, 1.0)
    return {"psnr": float(metrics.psnr(images, clean)), "ssim": float(metrics.ssim(images, clean))}


def classical_denoiser(sigma: float, crop: int, seed: int):
    """(denoise(noisy_image) -> image, description): BM3D if installed, else NL-means tuned on training crops."""
    s = sigma / 255.0
    try:
        import bm3d  # optional, not a dependency

        return (lambda x: np.asarray(bm3d.bm3d(x, sigma_psd=s), np.float32)), {"method": "BM3D (bm3d package)"}
    except ImportError:
        pass
    from skimage.restoration import denoise_nl_means

    def nlm(x, factor):
        return denoise_nl_means(x, h=factor * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                                channel_axis=-1).astype(np.float32)

    source = offline.DenoiseCrops("train", patch=crop, num=4, seed=seed)
    clean = np.stack([source[i]["target"] for i in range(len(source))]).astype(np.float32) / 255.0
    noisy = [degrade(c, np.random.default_rng((seed, 7, i)), sigma=sigma) for i, c in enumerate(clean)]
    tuned = {f: score(np.stack([nlm(x, f) for x in noisy]), clean)["psnr"] for f in NLM_H_FACTORS}
    best = max(tuned, key=tuned.get)
    return (lambda x: nlm(x, best)), {
        "method": "scikit-image denoise_nl_means (fast, patch 5, distance 6, true sigma)",
        "h": f"{best} * sigma", "h_tuning_psnr_on_train_crops": {str(k): round(v, 3) for k, v in tuned.items()}}


def grid_png(rows: list[list[np.ndarray]], path: str) -> None:
    """Images (H, W, 3) in [0, 1], rows x columns, with the column names on top."""
    from PIL import Image, ImageDraw

    h, w = rows[0][0].shape[:2]
    pad, header = 4, 18
    canvas = Image.new("RGB", (len(COLUMNS) * (w + pad) + pad, header + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(COLUMNS):
        draw.text((pad + c * (w + pad) + 4, 3), name, fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
            canvas.paste(tile, (pad + c * (w + pad), header + r * (h + pad)))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def write_report(workdir: str, out_dir: str | None = None, *, sigma: float | None = None, crop: int = 128,
                 count: int = 8, seed: int = 0, overwrite: bool = False) -> dict:
    """Evaluate `<workdir>/model.safetensors` and write summary.json + grid.png into out_dir; returns the summary."""
    import flaxzoo
    from flaxzoo.eval.restore import Restorer

    weights = os.path.join(workdir, "model.safetensors")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights} does not exist: the run has not finished. Train first (make train, or "
                                f"python scripts/train.py --config configs/maxim/default.py --workdir {workdir}).")
    out_dir = out_dir or os.path.join(workdir, "report")
    outputs = [os.path.join(out_dir, n) for n in ("summary.json", "grid.png")]
    existing = [p for p in outputs if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace the report, or --out "
                              f"another folder.")
    sigma = run_sigma(workdir) if sigma is None else float(sigma)
    model = flaxzoo.load_pretrained(weights)
    multiple = tuple(getattr(model, "size_multiple", (1, 1)))
    if crop % multiple[0] or crop % multiple[1]:
        raise ValueError(f"--crop {crop} must be a multiple of the model's size multiple {multiple}.")

    clean, noisy = held_out(crop, count, sigma, seed)
    restored = Restorer(model)(noisy)
    denoise, classical_info = classical_denoiser(sigma, crop, seed)
    classical = np.stack([denoise(x) for x in noisy])
    done = {}
    try:
        with open(os.path.join(workdir, "done.json")) as f:
            done = json.load(f)
    except (OSError, ValueError):
        pass
    summary = {
        "noisy": score(noisy, clean), "classical": score(classical, clean), "model": score(restored, clean),
        "details": {"images": f"{count} crops of {crop}x{crop} from the held-out photos "
                              f"{', '.join(offline.DENOISE_TEST)} (seed {seed})",
                    "noise": f"Gaussian, sigma {sigma:g}/255, unclipped; every image clipped to [0, 1] when scored",
                    "metrics": "flaxzoo.eval.metrics psnr/ssim, RGB, no border crop, mean over the crops",
                    "classical": classical_info, "weights": weights, "model": done.get("model"),
                    "step": done.get("step")}}
    os.makedirs(out_dir, exist_ok=True)
    grid_png([[noisy[i], classical[i], restored[i], clean[i]] for i in range(min(count, 4))], outputs[1])
    write_atomic(outputs[0], json.dumps(summary, indent=2) + "\n")
    return summary
