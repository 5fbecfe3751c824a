"""Real camera noise: SIDD (sRGB validation and benchmark blocks) and DND (submission format only).

Both read MATLAB .mat files with scipy.io.loadmat (scipy comes with scikit-image). Files saved as MATLAB
v7.3 (HDF5) are not supported: scipy cannot read them and flaxzoo does not depend on h5py; the error says so.
"""
from __future__ import annotations

import os

import numpy as np

from flaxzoo.data.benchmarks.common import PairedBenchmark


def load_mat(builder, root: str, filename: str, key: str) -> np.ndarray:
    """Array `key` of root/filename (MATLAB v5/v7), or a BenchmarkLayoutError that says what is wrong."""
    path = os.path.join(root, filename)
    if not os.path.isfile(path):
        raise builder.error(root, f"{filename} is missing")
    with open(path, "rb") as f:
        header = f.read(128)
    if b"MATLAB 7.3" in header:
        raise builder.error(root, f"{filename} is a MATLAB v7.3 (HDF5) file, which flaxzoo does not read; "
                                  f"re-save it in MATLAB with save(name, var, '-v7')")
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise ImportError("Reading .mat benchmark files needs scipy: pip install scipy") from e
    try:
        data = loadmat(path, variable_names=[key])
    except (ValueError, OSError, NotImplementedError) as e:
        raise builder.error(root, f"{filename} is not a readable .mat file ({e})") from None
    if key not in data:
        raise builder.error(root, f"{filename} has no variable {key!r}")
    arr = np.asarray(data[key])
    if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise builder.error(root, f"{filename}:{key} is {arr.dtype} {arr.shape}, not uint8 blocks (images, blocks, "
                                  f"H, W, 3)")
    return arr


class Sidd(PairedBenchmark):
    """SIDD sRGB blocks (Abdelhamed et al., CVPR 2018): 40 images x 32 blocks of 256x256.

    Splits: `validation` (noisy + ground truth: MAXIM's 39.96 dB) and `benchmark` (noisy only: the ground
    truth is private, submit to the online server; its `target` is an empty (0, 0, 3) array, as one TFDS
    dataset has one set of features). Each split is built when its files are present.
    Names: "<image>_<block>", zero based, in the .mat order.
    """

    HOMEPAGE = "https://abdokamel.github.io/sidd/ (SIDD Benchmark: sRGB validation and benchmark blocks)"
    LAYOUT = """
    <manual_dir>/ValidationNoisyBlocksSrgb.mat   variable ValidationNoisyBlocksSrgb  uint8 (40, 32, 256, 256, 3)
    <manual_dir>/ValidationGtBlocksSrgb.mat      variable ValidationGtBlocksSrgb     uint8 (40, 32, 256, 256, 3)
    <manual_dir>/BenchmarkNoisyBlocksSrgb.mat    variable BenchmarkNoisyBlocksSrgb   (optional: split benchmark)
    """
    FILES = {"validation": ("ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb"),
             "benchmark": ("BenchmarkNoisyBlocksSrgb", None)}

    @classmethod
    def examples(cls, root):
        present = {s: f for s, f in cls.FILES.items() if os.path.isfile(os.path.join(root, f[0] + ".mat"))}
        if not present:
            raise cls.error(root, "neither ValidationNoisyBlocksSrgb.mat nor BenchmarkNoisyBlocksSrgb.mat is there")
        return present

    def _split_generators(self, dl_manager):
        root = self.check_root(getattr(dl_manager, "_manual_dir", None))
        splits = {}
        for split, (noisy_key, gt_key) in self.examples(root).items():
            noisy = load_mat(self, root, noisy_key + ".mat", noisy_key)
            gt = load_mat(self, root, gt_key + ".mat", gt_key) if gt_key else None
            if gt is not None and gt.shape != noisy.shape:
                raise self.error(root, f"{gt_key}.mat {gt.shape} and {noisy_key}.mat {noisy.shape} differ in shape")
            splits[split] = self._blocks(noisy, gt)
        return splits

    def _blocks(self, noisy, gt):
        for i in range(noisy.shape[0]):
            for j in range(noisy.shape[1]):
                name = f"{i:02d}_{j:02d}"
                example = {"input": noisy[i, j], "name": name}
                example["target"] = gt[i, j] if gt is not None else np.zeros((0, 0, 3), np.uint8)
                yield name, example


class Dnd(PairedBenchmark):
    """DND (Ploetz and Roth, CVPR 2017): 50 noisy sRGB photos, ground truth private. Submission format only:
    split `benchmark` holds the noisy images (no target), to restore and submit to the online server;
    nothing is scored locally. The official files are MATLAB v7.3 (HDF5); flaxzoo reads the per-image
    noisy sRGB images only when saved as MATLAB v5/v7 or as PNG (see LAYOUT), and cuts no bounding boxes.
    """

    HAS_TARGET = False
    HOMEPAGE = "https://noise.visinf.tu-darmstadt.de/ (Darmstadt Noise Dataset, submission server)"
    LAYOUT = """
    <manual_dir>/images_srgb/0001.png ... 0050.png   the noisy sRGB images (or 0001.mat ... with variable
                                                     InoisySRGB, float in [0, 1], re-saved as MATLAB v7)
    """

    @classmethod
    def examples(cls, root):
        folder = os.path.join(root, "images_srgb")
        if not os.path.isdir(folder):
            raise cls.error(root, "images_srgb/ is missing")
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".png", ".mat")))
        if not names:
            raise cls.error(root, "images_srgb/ has no .png or .mat images")
        return {"benchmark": [(os.path.splitext(n)[0], os.path.join(folder, n), None) for n in names]}

    def _generate_examples(self, items):
        from flaxzoo.data.benchmarks.common import read_rgb

        for name, path, _ in items:
            if path.endswith(".mat"):
                root = os.path.dirname(os.path.dirname(path))
                image = _dnd_mat(self, root, path)
            else:
                image = read_rgb(path)
            yield name, {"input": image, "name": name}


def _dnd_mat(builder, root, path):
    with open(path, "rb") as f:
        if b"MATLAB 7.3" in f.read(128):
            raise builder.error(root, f"{os.path.basename(path)} is MATLAB v7.3 (HDF5), which flaxzoo does not "
                                      f"read; save the images as PNG or re-save with save(name, 'InoisySRGB', '-v7')")
    from scipy.io import loadmat

    image = np.asarray(loadmat(path, variable_names=["InoisySRGB"]).get("InoisySRGB"))
    if image.ndim != 3 or image.shape[-1] != 3:
        raise builder.error(root, f"{os.path.basename(path)} has no InoisySRGB (H, W, 3) image")
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
