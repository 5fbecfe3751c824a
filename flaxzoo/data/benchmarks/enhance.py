"""Low-light and retouching enhancement: LOL and MIT-Adobe FiveK."""
from __future__ import annotations

import os

from flaxzoo.data.benchmarks.common import PairedBenchmark, pair_folders


class Lol(PairedBenchmark):
    """LOL (Wei et al., BMVC 2018): split `test` = eval15 (15 pairs, 600x400), `train` = our485 if present."""

    HOMEPAGE = "https://daooshee.github.io/BMVC2018website/ (LOLdataset.zip)"
    LAYOUT = """
    <manual_dir>/eval15/low/<N>.png     low-light input
    <manual_dir>/eval15/high/<N>.png    normal-light target
    <manual_dir>/our485/{low,high}/     (optional) split train
    """

    @classmethod
    def examples(cls, root):
        out = {"test": pair_folders(cls, root, os.path.join(root, "eval15", "low"),
                                    os.path.join(root, "eval15", "high"))}
        if os.path.isdir(os.path.join(root, "our485")):
            out["train"] = pair_folders(cls, root, os.path.join(root, "our485", "low"),
                                        os.path.join(root, "our485", "high"))
        return out


class Fivek(PairedBenchmark):
    """MIT-Adobe FiveK, expert C retouching. FiveK has no official test split or file layout: MAXIM follows
    the common split (the last 500 images as test). Export the inputs and expert C's renditions at the size
    you evaluate at into the layout below (same file names)."""

    HOMEPAGE = "https://data.csail.mit.edu/graphics/fivek/"
    LAYOUT = """
    <manual_dir>/test/input/<name>.png     input rendition
    <manual_dir>/test/target/<name>.png    expert C rendition, same file name
    <manual_dir>/train/{input,target}/     (optional) split train
    """

    @classmethod
    def examples(cls, root):
        out = {"test": pair_folders(cls, root, os.path.join(root, "test", "input"),
                                    os.path.join(root, "test", "target"))}
        if os.path.isdir(os.path.join(root, "train")):
            out["train"] = pair_folders(cls, root, os.path.join(root, "train", "input"),
                                        os.path.join(root, "train", "target"))
        return out
