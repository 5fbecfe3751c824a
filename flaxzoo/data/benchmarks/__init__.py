"""Restoration benchmark datasets as TFDS builders over folders you download (manual_dir).

    python -m flaxzoo.data.benchmarks sidd --manual-dir ~/Downloads/SIDD --data-dir ~/tensorflow_datasets
    flaxzoo-eval --model maxim_s3_denoising_sidd --weights checkpoint.npz --data tfds:sidd/validation ...

Importing this package registers the builders with TFDS (`tfds.data_source("sidd", ...)` then works);
`flaxzoo.data.pipeline.make_source("tfds:...")` imports it. Each builder's docstring (and its error when the
folder is missing or incomplete) gives the layout and the download page: `describe(name)`.
"""
from __future__ import annotations

from flaxzoo.data.benchmarks.common import BenchmarkLayoutError, PairedBenchmark
from flaxzoo.data.benchmarks.deblur import Gopro, Hide, Realblur
from flaxzoo.data.benchmarks.dehaze import Sots
from flaxzoo.data.benchmarks.derain import Rain13k, Raindrop
from flaxzoo.data.benchmarks.enhance import Fivek, Lol
from flaxzoo.data.benchmarks.sidd import Dnd, Sidd

BUILDERS = {b.name: b for b in (Sidd, Dnd, Gopro, Hide, Realblur, Rain13k, Raindrop, Sots, Lol, Fivek)}

__all__ = ["BUILDERS", "BenchmarkLayoutError", "PairedBenchmark", "describe", "prepare"]


def builder_class(name: str):
    if name not in BUILDERS:
        import difflib

        close = difflib.get_close_matches(name, list(BUILDERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown benchmark dataset {name!r}.{hint} Choose from {', '.join(BUILDERS)}.")
    return BUILDERS[name]


def describe(name: str) -> str:
    cls = builder_class(name)
    return f"{name}: {(cls.__doc__ or '').strip()}\n{cls.manual_instructions()}"


def prepare(name: str, *, manual_dir: str, data_dir: str | None = None, overwrite: bool = False):
    """Build benchmark `name` from `manual_dir` into `data_dir` (ArrayRecord); returns the builder.
    An already prepared dataset is kept (TFDS reuses it) unless `overwrite`."""
    import os

    import tensorflow_datasets as tfds

    cls = builder_class(name)
    manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
    cls.examples(cls.check_root(manual_dir))  # the layout error before TFDS's own manual_dir assertion
    builder = cls(data_dir=data_dir, file_format="array_record")
    mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    if overwrite:
        mode = tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir,
                                                                              download_mode=mode))
    return builder
