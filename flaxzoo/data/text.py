"""Text for language models: byte-level tokenisation, packed windows, and a small offline corpus.

Byte level (`ByteTokenizer`): ids 0..255 are the UTF-8 bytes, 256 ends a document, 257 pads; any
text in any language, no vocabulary file, nothing to download. `PackedBytes` turns any random-access
source of documents (a TFDS text set such as lm1b or wiki40b, `text` feature) into fixed windows.

Python ships its own documentation text (`pydoc_data.topics`, about 465k characters), so a
character- or byte-level LM can be trained anywhere without downloading anything.
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


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, plus EOS (end of document) = 256 and PAD = 257: vocab_size 258."""

    EOS, PAD = 256, 257
    vocab_size = 258

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text) -> np.ndarray:
        data = text if isinstance(text, (bytes, bytearray, np.bytes_)) else str(text).encode("utf-8")
        return np.frombuffer(bytes(data), np.uint8).astype(np.int32)

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


class PackedBytes:
    """Random-access LM windows over a source of documents: {'tokens': (seq_len + 1,), 'mask': (seq_len + 1,)}.

    Window i starts at document i * stride and is filled with that document and the ones after it, each
    followed by EOS, until seq_len + 1 bytes (the last document is cut): fixed windows, no padding inside
    the data. Random access keeps grain's exact resume and per-process sharding; the price is that with
    stride below the mean number of documents per window, consecutive windows share text (stride=1 starts
    a window at every document). Windows that run past the last document are padded (mask 0).
    """

    def __init__(self, source, *, seq_len: int, stride: int = 1, text_key: str = "text"):
        if seq_len < 1 or stride < 1:
            raise ValueError(f"seq_len and stride must be positive, got {seq_len} and {stride}.")
        self.source, self.seq_len, self.stride, self.text_key = source, int(seq_len), int(stride), text_key
        self.tokenizer = ByteTokenizer()

    def __len__(self) -> int:
        return (len(self.source) + self.stride - 1) // self.stride

    def document(self, j: int) -> np.ndarray:
        ex = self.source[j]
        if self.text_key not in ex:
            raise KeyError(f"Text examples have no {self.text_key!r} feature (they have {sorted(ex)}); "
                           f"set data.pp.text_key.")
        return self.tokenizer.encode(ex[self.text_key])

    def __getitem__(self, i: int) -> dict:
        need = self.seq_len + 1
        parts, have, j = [], 0, i * self.stride
        while have < need and j < len(self.source):
            doc = np.append(self.document(j), ByteTokenizer.EOS)
            parts.append(doc[:need - have])
            have += len(parts[-1])
            j += 1
        tokens = np.full(need, ByteTokenizer.PAD, np.int32)
        tokens[:have] = np.concatenate(parts) if parts else []
        return {"tokens": tokens, "mask": (np.arange(need) < have).astype(np.int32)}


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
    test split, so no test window overlaps a training one. `tokenizer='char'` (default): the
    vocabulary is built from the whole text, so both splits share ids (104 characters, plus id 0
    for unknown). `tokenizer='byte'`: UTF-8 bytes, `ByteTokenizer` ids (vocab_size 258).
    """

    def __init__(self, split: str = "train", seq_len: int = 128, stride: int | None = None, tokenizer: str = "char"):
        from pydoc_data.topics import topics

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if tokenizer not in ("char", "byte"):
            raise ValueError(f"tokenizer must be 'char' or 'byte', got {tokenizer!r}")
        names = sorted(topics)
        cut = int(0.9 * len(names))
        chosen = names[:cut] if split == "train" else names[cut:]
        self.vocab = CharVocab(pydoc_text()) if tokenizer == "char" else ByteTokenizer()
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
