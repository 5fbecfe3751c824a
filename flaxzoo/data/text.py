"""A small offline English corpus for language-model tests and examples.

Python ships its own documentation text (`pydoc_data.topics`, about 465k characters), so a
character-level LM can be trained anywhere without downloading anything.
"""
from __future__ import annotations

import numpy as np


def pydoc_text() -> str:
    """The concatenated pydoc topic texts (English prose and code), deterministic order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


class CharVocab:
    """Character-level vocabulary: id 0 is reserved for characters never seen when it was built."""

    def __init__(self, text: str, max_size: int | None = None):
        counts: dict[str, int] = {}
        for ch in text:
            counts[ch] = counts.get(ch, 0) + 1
        chars = sorted(counts, key=lambda c: (-counts[c], c))
        if max_size is not None:
            chars = chars[: max_size - 1]
        self.chars = ["\0"] + sorted(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray([self.index.get(c, 0) for c in text], np.int32)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def lm_batches(ids: np.ndarray, batch_size: int, seq_len: int, *, seed: int = 0):
    """Endless {"tokens": (batch_size, seq_len + 1) int32} windows at random offsets."""
    if len(ids) <= seq_len + 1:
        raise ValueError(f"Text of {len(ids)} tokens is too short for seq_len {seq_len}.")
    rng = np.random.default_rng(seed)
    while True:
        starts = rng.integers(0, len(ids) - seq_len - 1, size=batch_size)
        yield {"tokens": np.stack([ids[s:s + seq_len + 1] for s in starts])}


class PydocWindows:
    """Random-access LM source over the pydoc text: {'tokens': (seq_len + 1,) int32} windows.

    Topics are split, not characters: the last tenth of the topics (sorted by name) is the
    test split, so no test window overlaps a training one. The vocabulary is built from the
    whole text, so both splits share ids (104 characters, plus id 0 for unknown).
    """

    def __init__(self, split: str = "train", seq_len: int = 128, stride: int | None = None):
        from pydoc_data.topics import topics

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        names = sorted(topics)
        cut = int(0.9 * len(names))
        chosen = names[:cut] if split == "train" else names[cut:]
        self.vocab = CharVocab(pydoc_text())
        self.ids = self.vocab.encode("\n\n".join(topics[k] for k in chosen))
        self.seq_len = seq_len
        self.stride = stride or seq_len
        if len(self.ids) <= seq_len + 1:
            raise ValueError(f"The {split} text ({len(self.ids)} characters) is shorter than seq_len {seq_len}.")

    def __len__(self) -> int:
        return (len(self.ids) - self.seq_len - 1) // self.stride + 1

    def __getitem__(self, i: int) -> dict:
        start = i * self.stride
        return {"tokens": self.ids[start:start + self.seq_len + 1]}
