"""What every benchmark builder shares: a paired-image TFDS builder over a folder the user downloaded.

A builder is a `tfds.core.GeneratorBasedBuilder` (TFDS without TensorFlow: uint8 `Tensor` features, zlib
encoded, not `Image`, whose PNG encoding needs TF) writing ArrayRecord files that `tfds.data_source` and
grain read, like every other set (`flaxzoo.data.pipeline.make_source("tfds:<name>")`). Examples:
{"input": uint8 (H, W, 3), "target": uint8 (H, W, 3) (absent where the ground truth is private),
"name": the file or block name}, in the dataset's own order (no shuffling: per-image CSVs line up).

Each subclass states, in its docstring, `LAYOUT` and `HOMEPAGE`, the folder layout it reads from
`manual_dir` and where to download it; a missing or incomplete folder raises `BenchmarkLayoutError`
naming what is missing, the expected layout and the download page.
"""
from __future__ import annotations

import abc
import os
import textwrap

import numpy as np
import tensorflow_datasets as tfds

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class BenchmarkLayoutError(ValueError):
    """The manual folder is missing, incomplete or not in the dataset's layout."""


class PairedBenchmark(tfds.core.GeneratorBasedBuilder):
    """Base class (abstract: not registered with TFDS). Subclasses set LAYOUT, HOMEPAGE and `examples`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    disable_shuffling = True  # the dataset's own order: per-image results line up with the files
    LAYOUT = ""
    HOMEPAGE = ""
    HAS_TARGET = True

    @classmethod
    def manual_instructions(cls) -> str:
        return f"Download from {cls.HOMEPAGE} and arrange the files as:\n{layout(cls)}"

    @property
    def MANUAL_DOWNLOAD_INSTRUCTIONS(self) -> str:  # noqa: N802 - the TFDS attribute name
        return self.manual_instructions()

    def _info(self):
        image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib")
        features = {"input": image, "name": tfds.features.Text()}
        if self.HAS_TARGET:
            features["target"] = image
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                     homepage=self.HOMEPAGE, description=(self.__doc__ or "").strip(),
                                     disable_shuffling=self.disable_shuffling)

    @classmethod
    def error(cls, root: str, problem: str) -> BenchmarkLayoutError:
        return BenchmarkLayoutError(f"{cls.name}: {problem} (manual_dir {root}).\nExpected layout:\n"
                                    f"{layout(cls)}\nDownload it from {cls.HOMEPAGE} into that folder in "
                                    f"the layout above (python -m flaxzoo.data.benchmarks {cls.name} prints it), "
                                    f"then prepare again.")

    @classmethod
    @abc.abstractmethod
    def examples(cls, root: str) -> dict[str, list[tuple]]:
        """{split: [(name, input_path, target_path or None), ...]}, after checking the layout under `root`.
        SIDD overrides `_generate_examples` instead (its blocks live in .mat arrays)."""

    @classmethod
    def check_root(cls, root) -> str:
        if root is None or not os.path.isdir(root):
            raise cls.error(str(root), "the manual download folder does not exist")
        return os.fspath(root)

    def _split_generators(self, dl_manager):
        root = self.check_root(getattr(dl_manager, "_manual_dir", None))
        splits = self.examples(root)  # every split checked before anything is written
        return {split: self._generate_examples(items) for split, items in splits.items()}

    def _generate_examples(self, items):
        for name, input_path, target_path in items:
            example = {"input": read_rgb(input_path), "name": name}
            if target_path is not None:
                example["target"] = read_rgb(target_path)
                if example["target"].shape != example["input"].shape:
                    raise BenchmarkLayoutError(f"{self.name}: {input_path} {example['input'].shape} and its target "
                                               f"{target_path} {example['target'].shape} differ in size.")
            yield name, example


def layout(cls) -> str:
    return textwrap.dedent(cls.LAYOUT).strip("\n")


def read_rgb(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def images_in(folder: str) -> list[str]:
    """Image file names in `folder`, sorted; [] if it does not exist."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))


def stem(name: str) -> str:
    return os.path.splitext(name)[0]


def pair_folders(builder, root: str, input_dir: str, target_dir: str, *, target_stem=lambda s: s,
                 prefix: str = "") -> list[tuple]:
    """(name, input, target) for every image in input_dir whose target (same stem, or `target_stem(stem)`,
    any image extension) is in target_dir; a missing folder or target is a BenchmarkLayoutError."""
    rel = lambda p: os.path.relpath(p, root)  # noqa: E731
    inputs = images_in(input_dir)
    if not inputs:
        raise builder.error(root, f"no images in {rel(input_dir)}/")
    targets = {stem(n): n for n in images_in(target_dir)}
    if not targets:
        raise builder.error(root, f"no images in {rel(target_dir)}/")
    missing = [n for n in inputs if target_stem(stem(n)) not in targets]
    if missing:
        raise builder.error(root, f"{len(missing)} of {len(inputs)} images in {rel(input_dir)}/ have no target in "
                                  f"{rel(target_dir)}/ (first: {missing[0]})")
    return [(prefix + stem(n), os.path.join(input_dir, n), os.path.join(target_dir, targets[target_stem(stem(n))]))
            for n in inputs]


def subfolders(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))) \
        if os.path.isdir(folder) else []
