"""Real images that ship inside installed packages (scikit-image), as random-access sources.

No download is ever needed, so these sets let anyone train and benchmark end to end on a
laptop or in CI. They are small; for real work point the config at a TFDS dataset.

- `textures`: classification of 32x32 grayscale patches by the photo they come from
  (brick, grass, gravel, ...). Train patches come from the top three quarters of each
  photo, test patches from the bottom quarter, so the splits never share pixels.
- `denoise`: clean RGB crops of real photos for restoration; the pipeline adds the noise.
  Train and test use different photos.
"""
from __future__ import annotations

import functools

import numpy as np

TEXTURE_IMAGES = ("brick", "grass", "gravel", "camera", "moon", "coins", "text", "page", "clock", "cell")
DENOISE_TRAIN = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
DENOISE_TEST = ("chelsea", "stereo_motorcycle")


def _skimage_data():
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError("The offline datasets need scikit-image: pip install scikit-image") from e
    return skimage.data


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 HxW (grayscale) or HxWx3."""
    img = getattr(_skimage_data(), name)()
    if name == "stereo_motorcycle":
        img = img[0]
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(np.ptp(img), 1e-8)).astype(np.uint8)
    return img[..., :3] if img.ndim == 3 else img


class TexturePatches:
    """Random-access classification source: {'image': (32,32,1) uint8, 'label': int32}."""

    def __init__(self, split: str = "train", patch: int = 32, per_image: int = 512, seed: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        rng = np.random.default_rng([seed, split == "test"])
        self.images, self.labels = [], []
        for label, name in enumerate(TEXTURE_IMAGES):
            img = load_photo(name)
            img = img if img.ndim == 2 else img.mean(-1).astype(np.uint8)
            h, w = img.shape
            lo, hi = (0, 3 * h // 4) if split == "train" else (3 * h // 4, h)
            for _ in range(per_image if split == "train" else per_image // 4):
                y = rng.integers(lo, hi - patch + 1)
                x = rng.integers(0, w - patch + 1)
                self.images.append(img[y:y + patch, x:x + patch, None])
                self.labels.append(label)
        self.num_classes = len(TEXTURE_IMAGES)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": np.int32(self.labels[i])}


class DenoiseCrops:
    """Random-access restoration source: {'target': (patch,patch,3) uint8} clean crops (noise added later)."""

    def __init__(self, split: str = "train", patch: int = 64, num: int = 2048, seed: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        names = DENOISE_TRAIN if split == "train" else DENOISE_TEST
        rng = np.random.default_rng([seed, split == "test"])
        photos = [load_photo(n) for n in names]
        self.crops = []
        for i in range(num if split == "train" else max(num // 16, 8)):
            img = photos[i % len(photos)]
            y = rng.integers(0, img.shape[0] - patch + 1)
            x = rng.integers(0, img.shape[1] - patch + 1)
            self.crops.append(img[y:y + patch, x:x + patch])

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> dict:
        return {"target": self.crops[i]}
