"""How each restoration benchmark is scored: colour space, border crop, quantisation.

A protocol turns (target, prediction), float (H, W, C) in [0, 1], into {"psnr", "ssim"} with
`flaxzoo.eval.metrics`. Every protocol pads the same way, the official MAXIM `run_eval` way (reflect to even
sizes at the bottom/right, then symmetrically to the model's size multiple, crop back; done by
`flaxzoo.eval.restore.restore_array`); they differ in what is scored:

name       channel  crop  scored values                         follows
official   RGB      0     unclipped float prediction            MAXIM run_eval.calculate_psnr (the repo's own)
sidd       RGB      0     unclipped float prediction            run_eval, which produced the README's SIDD row
gopro      RGB      0     uint8 (clipped, rounded)              MATLAB evaluation of saved PNGs (MPRNet/MAXIM)
hide       RGB      0     uint8                                 as GoPro
realblur   RGB      0     uint8, NOT aligned                    the official RealBlur script also aligns (ECC)
                                                                 and masks: our numbers are lower (maxim.md s7)
rain       Y        0     uint8, Y of BT.601 (MATLAB rgb2ycbcr)  MPRNet/Restormer deraining (Rain13k sets)
raindrop   Y        0     uint8, Y                              the deraining convention (the reference notes do
                                                                 not pin Raindrop's: checked against no script)
sots       RGB      0     uint8                                 dehazing papers (RESIDE SOTS)
lol        RGB      0     unclipped float prediction            run_eval (maxim-rs reproduced 23.47 vs 23.43)
fivek      RGB      0     unclipped float prediction            run_eval

`uint8` protocols score what a saved PNG would: both images clipped to [0, 1], times 255, rounded. DND is
not scored locally (its ground truth is private: the online server scores a submission).
"""
from __future__ import annotations

import dataclasses
import difflib

import numpy as np

from flaxzoo.eval import metrics
from flaxzoo.validate import InputError


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    y_channel: bool = False
    crop_border: int = 0
    quantize: bool = False  # score uint8 images (clip, x255, round), as a saved PNG
    ssim: bool = True
    note: str = ""

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A float image in [0, 1] (prediction: possibly slightly outside) -> what this protocol scores."""
        image = np.asarray(image, np.float64)
        if self.quantize:
            return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        return image

    def score(self, target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
        """{"psnr": dB, "ssim": ...} of one image pair (or a batch mean) under this protocol."""
        a, b = self.prepare(target), self.prepare(pred)
        kwargs = dict(crop_border=self.crop_border, y_channel=self.y_channel)
        out = {"psnr": metrics.psnr(a, b, **kwargs)}
        if self.ssim:
            out["ssim"] = metrics.ssim(a, b, **kwargs)
        return out


PROTOCOLS = {p.name: p for p in (
    Protocol("official", note="MAXIM run_eval: RGB, no crop, unclipped float output"),
    Protocol("sidd", note="SIDD sRGB validation/benchmark blocks, as run_eval"),
    Protocol("gopro", quantize=True, note="RGB on uint8 PNGs (MATLAB evaluation)"),
    Protocol("hide", quantize=True, note="RGB on uint8 PNGs (MATLAB evaluation)"),
    Protocol("realblur", quantize=True, note="RGB on uint8, without the official ECC alignment: lower than "
                                             "published"),
    Protocol("rain", y_channel=True, quantize=True, note="Y channel (BT.601) on uint8"),
    Protocol("raindrop", y_channel=True, quantize=True, note="Y channel on uint8 (the deraining convention)"),
    Protocol("sots", quantize=True, note="RGB on uint8"),
    Protocol("lol", note="RGB, unclipped float (run_eval)"),
    Protocol("fivek", note="RGB, unclipped float (run_eval)"),
)}

# Our benchmark builders -> the protocol their published numbers follow.
DEFAULT_FOR_DATASET = {"sidd": "sidd", "dnd": "sidd", "gopro": "gopro", "hide": "hide", "realblur": "realblur",
                       "rain13k": "rain", "raindrop": "raindrop", "sots": "sots", "lol": "lol", "fivek": "fivek"}


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(str(name), list(PROTOCOLS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"Unknown protocol {name!r}.{hint} Choose from {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[name]


def for_dataset(dataset: str) -> Protocol:
    """The protocol of a benchmark dataset ('sidd', 'tfds:rain13k', ...); 'official' for any other set."""
    base = dataset.split(":")[-1].split("/")[0]
    return PROTOCOLS[DEFAULT_FOR_DATASET.get(base, "official")]
