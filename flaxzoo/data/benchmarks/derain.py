"""Deraining: the five Rain13k test sets (Rain100H, Rain100L, Test100, Test1200, Test2800) and Raindrop."""
from __future__ import annotations

import os

from flaxzoo.data.benchmarks.common import PairedBenchmark, pair_folders


class Rain13k(PairedBenchmark):
    """The deraining test sets MAXIM (and MPRNet, Restormer) report on, as MPRNet's Datasets page ships them.
    One split per set, lower case: rain100h, rain100l, test100, test1200, test2800 (each built when present).
    Published numbers are on the Y channel (protocol 'rain')."""

    HOMEPAGE = "https://github.com/swz30/MPRNet/blob/main/Deraining/Datasets/README.md (test.zip)"
    LAYOUT = """
    <manual_dir>/test/<set>/input/<name>.png     rainy input; <set> in Rain100H Rain100L Test100 Test1200 Test2800
    <manual_dir>/test/<set>/target/<name>.png    clean target, same file name
    """
    SETS = ("Rain100H", "Rain100L", "Test100", "Test1200", "Test2800")

    @classmethod
    def examples(cls, root):
        out = {}
        for s in cls.SETS:
            folder = os.path.join(root, "test", s)
            if os.path.isdir(folder):
                out[s.lower()] = pair_folders(cls, root, os.path.join(folder, "input"), os.path.join(folder, "target"))
        if not out:
            raise cls.error(root, f"none of test/{{{','.join(cls.SETS)}}}/ is there")
        return out


class Raindrop(PairedBenchmark):
    """Raindrop (Qian et al., CVPR 2018): splits `test_a` (58 pairs, MAXIM's 31.87 dB) and `test_b` (249),
    each built when present. Inputs N_rain.png pair with targets N_clean.png."""

    HOMEPAGE = "https://github.com/rui1996/DeRaindrop (test_a.zip, test_b.zip)"
    LAYOUT = """
    <manual_dir>/test_a/data/<N>_rain.png    raindrop input
    <manual_dir>/test_a/gt/<N>_clean.png     clean target
    <manual_dir>/test_b/...                  (optional) the same
    """

    @classmethod
    def examples(cls, root):
        out = {}
        for split in ("test_a", "test_b"):
            if os.path.isdir(os.path.join(root, split)):
                out[split] = pair_folders(cls, root, os.path.join(root, split, "data"), os.path.join(root, split, "gt"),
                                          target_stem=lambda s: s.rsplit("_", 1)[0] + "_clean")
        if not out:
            raise cls.error(root, "neither test_a/ nor test_b/ is there")
        return out
