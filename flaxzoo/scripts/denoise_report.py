"""Evaluate a trained denoiser on held-out bundled photos against the noisy input and a classical denoiser.

    flaxzoo-denoise-report --workdir runs/default                 # writes runs/default/report/
    flaxzoo-denoise-report --workdir runs/default --overwrite     # replace an earlier report

(`python scripts/denoise_report.py ...` is the same program; `make train` runs it after the default job.)
Writes summary.json ({"noisy", "classical", "model"}: {"psnr", "ssim"}) and grid.png (noisy | classical |
model | clean). The noise level is the run's (its config.json), unless --sigma. See flaxzoo.eval.denoise_report.
"""
from __future__ import annotations

import json

from flaxzoo import cli


def run(argv) -> int:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--workdir", required=True, help="a finished denoising run (holds model.safetensors)")
    p.add_argument("--out", help="report folder (default: WORKDIR/report)")
    p.add_argument("--sigma", type=float, help="noise level on 0-255 (default: the run's data.pp.sigma)")
    p.add_argument("--crop", type=int, default=128, help="side of the held-out crops")
    p.add_argument("--count", type=int, default=8, help="number of held-out crops")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    a = p.parse_args(argv)
    if a.crop < 16 or a.count < 1:
        raise cli.UsageError(f"--crop must be at least 16 and --count at least 1; got {a.crop} and {a.count}.")
    if a.sigma is not None and not 0 < a.sigma <= 255:
        raise cli.UsageError(f"--sigma is on the 0-255 scale and must be in (0, 255]; got {a.sigma}.")
    from flaxzoo.eval.denoise_report import write_report

    summary = write_report(a.workdir, a.out, sigma=a.sigma, crop=a.crop, count=a.count, overwrite=a.overwrite)
    for key in ("noisy", "classical", "model"):
        print(f"{key:9s} PSNR {summary[key]['psnr']:6.2f} dB  SSIM {summary[key]['ssim']:.4f}")
    print(f"classical = {summary['details']['classical']['method']}")
    print(json.dumps({"report": a.out or f"{a.workdir}/report"}))
    return cli.EXIT_OK


def main(argv=None) -> int:
    return cli.call(run, argv)
