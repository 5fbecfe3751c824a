"""Dehazing: RESIDE SOTS, indoor and outdoor."""
from __future__ import annotations

import os

from flaxzoo.data.benchmarks.common import PairedBenchmark, pair_folders


class Sots(PairedBenchmark):
    """RESIDE SOTS (Li et al., TIP 2019): splits `indoor` (500 hazy images of 50 scenes) and `outdoor` (500),
    each built when present. A hazy image <id>_<...>.png pairs with the clear image <id>.png."""

    HOMEPAGE = "https://sites.google.com/view/reside-dehaze-datasets (RESIDE-Standard / RESIDE-beta: SOTS)"
    LAYOUT = """
    <manual_dir>/indoor/hazy/<id>_<k>.png               hazy input (e.g. 1400_1.png)
    <manual_dir>/indoor/gt/<id>.png                     clear target (e.g. 1400.png)
    <manual_dir>/outdoor/hazy/<id>_<a>_<b>.jpg          (e.g. 0001_0.8_0.2.jpg)
    <manual_dir>/outdoor/gt/<id>.png
    """

    @classmethod
    def examples(cls, root):
        out = {}
        for split in ("indoor", "outdoor"):
            if os.path.isdir(os.path.join(root, split)):
                out[split] = pair_folders(cls, root, os.path.join(root, split, "hazy"), os.path.join(root, split, "gt"),
                                          target_stem=lambda s: s.split("_")[0])
        if not out:
            raise cls.error(root, "neither indoor/ nor outdoor/ is there")
        return out
