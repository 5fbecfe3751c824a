"""Paired image folders, the layout restoration datasets are usually prepared in (MPRNet/Restormer scripts).

    <data_dir>/<split>/input/*.png    degraded images (noisy, blurry, rainy, ...)
    <data_dir>/<split>/target/*.png   the clean images, same file names

`make_source("folder:pairs", split, data_dir=..., input_dir="input", target_dir="target")` reads them as
{'input', 'target'} uint8 arrays, decoded with PIL when accessed (any size). Files are paired by name;
a file without its partner is an error, not a silent skip.
"""
from __future__ import annotations

import os

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class PairedFolder:
    def __init__(self, split: str, *, data_dir: str | None, input_dir: str = "input", target_dir: str = "target"):
        root = os.path.join(data_dir or "", split)
        dirs = [os.path.join(root, input_dir), os.path.join(root, target_dir)]
        for d in dirs:
            if not data_dir or not os.path.isdir(d):
                raise FileNotFoundError(f"Image folder {d!r} not found: set data.data_dir to the folder holding "
                                        f"<split>/{input_dir}/ and <split>/{target_dir}/ (see flaxzoo/data/folder.py).")
        names = [sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTENSIONS)) for d in dirs]
        if names[0] != names[1]:
            only = sorted(set(names[0]) ^ set(names[1]))[:5]
            raise ValueError(f"{dirs[0]} and {dirs[1]} do not hold the same file names (e.g. {only}); "
                             f"every degraded image needs its clean target of the same name.")
        if not names[0]:
            raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {dirs[0]}.")
        self.dirs, self.names = dirs, names[0]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        def load(d):
            with Image.open(os.path.join(d, self.names[i])) as im:
                return np.asarray(im.convert("RGB"))
        return {"input": load(self.dirs[0]), "target": load(self.dirs[1])}
