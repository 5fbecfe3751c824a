"""Inputs to decompose, from the offline sets flaxzoo bundles (nothing is downloaded) or a .npy file.

- `offline:textures`: texture patches (the classes of configs/swin/textures.py), preprocessed as that
  config evaluates them, an equal number per class; labels = class.
- `offline:pydoc`: concept passages for the pydoc character LM (configs/uoe/lm_pydoc.py): the
  `topics` largest pydoc topics, `per_topic` passages of `seq_len` characters each, spread over the
  topic; labels = topic (the stand-in for the paper's 20 concepts x 10 sentences).
- `offline:denoise`: clean photo crops in [0, 1] for MAXIM; no labels.
- `FILE.npy`: integer token ids (N, L) or float images (N, H, W, C), read with allow_pickle=False.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

from flaxzoo.validate import InputError


@dataclasses.dataclass
class Inputs:
    x: np.ndarray  # model inputs, examples along axis 0
    kind: str  # "image" or "text"
    labels: np.ndarray | None = None  # (N,) concept/class per example
    label_names: list[str] | None = None
    decode: Callable | None = None  # text: ids -> str
    vocab: list[str] | None = None  # text: output index -> token string

    def display_images(self) -> np.ndarray:
        return self.x


def _textures(count: int, image_size: int, channels: int, split: str) -> Inputs:
    from flaxzoo.data import offline, transforms

    source = offline.TexturePatches(split)
    per_class = max(1, count // source.num_classes)
    labels = np.asarray(source.labels)
    chosen = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(source.num_classes)])
    fn = transforms.classify(False, size=image_size)
    x = np.stack([fn(source[int(i)], None)["image"] for i in chosen])
    if channels != x.shape[-1]:
        x = np.repeat(x[..., :1], channels, -1)
    return Inputs(x=x, kind="image", labels=labels[chosen], label_names=list(offline.TEXTURE_IMAGES))


def pydoc_topics(topics: int, per_topic: int, seq_len: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(ids (topics*per_topic, seq_len), labels, topic names) over the largest pydoc topics."""
    from pydoc_data.topics import topics as texts

    from flaxzoo.data.text import CharVocab, pydoc_text

    vocab = CharVocab(pydoc_text())  # the vocabulary PydocWindows trains with
    names = sorted((k for k in texts if len(texts[k]) >= seq_len * per_topic), key=lambda k: (-len(texts[k]), k))
    names = sorted(names[:topics])
    if len(names) < topics:
        raise InputError(f"Only {len(names)} pydoc topics have {seq_len * per_topic} characters; ask for fewer "
                         f"topics, passages or a shorter seq_len.")
    ids, labels = [], []
    for label, name in enumerate(names):
        text = vocab.encode(texts[name])
        for start in np.linspace(0, len(text) - seq_len, per_topic).astype(int):
            ids.append(text[start:start + seq_len])
            labels.append(label)
    return np.stack(ids).astype(np.int32), np.asarray(labels), names


def _pydoc(topics: int, per_topic: int, seq_len: int) -> Inputs:
    from flaxzoo.data.text import CharVocab, pydoc_text

    ids, labels, names = pydoc_topics(topics, per_topic, seq_len)
    vocab = CharVocab(pydoc_text())
    return Inputs(x=ids, kind="text", labels=labels, label_names=names, decode=vocab.decode, vocab=vocab.chars)


def _denoise(count: int) -> Inputs:
    from flaxzoo.data import offline

    source = offline.DenoiseCrops("test", patch=64, num=max(16 * count, 16))
    x = np.stack([np.asarray(source[i]["target"], np.float32) / 255.0 for i in range(min(count, len(source)))])
    return Inputs(x=x, kind="image")


def _npy(path: str) -> Inputs:
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise InputError(f"{path} is not a plain .npy array ({e}); save inputs with np.save(path, array).") from None
    if np.issubdtype(x.dtype, np.integer) and x.ndim == 2:
        return Inputs(x=x.astype(np.int32), kind="text", decode=lambda ids: " ".join(str(int(i)) for i in ids))
    if np.issubdtype(x.dtype, np.floating) and x.ndim == 4:
        return Inputs(x=x.astype(np.float32), kind="image")
    raise InputError(f"{path} holds a {x.dtype} array of shape {x.shape}; expected token ids (N, L) int or "
                     f"images (N, H, W, C) float.")


def load(source: str, *, count: int = 200, image_size: int = 64, channels: int = 1, topics: int = 20,
         per_topic: int = 10, seq_len: int = 64, split: str = "test") -> Inputs:
    if source == "offline:textures":
        return _textures(count, image_size, channels, split)
    if source == "offline:pydoc":
        return _pydoc(topics, per_topic, seq_len)
    if source == "offline:denoise":
        return _denoise(count)
    if source.endswith(".npy"):
        if not os.path.exists(source):
            raise FileNotFoundError(f"--data {source} does not exist.")
        return _npy(source)
    raise InputError(f"Unknown data source {source!r}: use offline:textures, offline:pydoc, offline:denoise or a "
                     f".npy file of inputs.")
