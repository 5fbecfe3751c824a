"""ListOps from the Long Range Arena release (Tay et al. 2021), read from its TSV files.

Get `lra_release.gz` from the LRA repository (google-research/long-range-arena), unpack it, and point
`data.data_dir` at `lra_release/listops-1000` (files basic_train.tsv, basic_val.tsv, basic_test.tsv,
columns Source and Target). Tokens: the operators `[MIN [MAX [MED [SM`, the closing `]` and the digits
0-9, ids 1..15, 0 = padding; the parentheses of the TSV only mark the tree and are dropped (as LRA's own
pipeline does). Examples longer than `max_len` are cut and counted (`num_truncated`).
"""
from __future__ import annotations

import csv
import os

import numpy as np

VOCAB = ("<pad>", "[MIN", "[MAX", "[MED", "[SM", "]", *"0123456789")
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
SPLIT_FILES = {"train": "basic_train.tsv", "validation": "basic_val.tsv", "val": "basic_val.tsv",
               "test": "basic_test.tsv"}


def encode(source: str) -> np.ndarray:
    ids = []
    for tok in source.replace("(", " ").replace(")", " ").split():
        if tok not in TOKEN_ID:
            raise ValueError(f"Unknown ListOps token {tok!r}; expected one of {VOCAB[1:]}.")
        ids.append(TOKEN_ID[tok])
    return np.asarray(ids, np.int32)


class ListOps:
    """Random-access source: {'tokens': (max_len,) int32, 'token_mask': (max_len,) int32, 'label': int32 0..9}."""

    def __init__(self, split: str = "train", *, data_dir: str | None = None, max_len: int = 2048):
        if split not in SPLIT_FILES:
            raise ValueError(f"ListOps split must be one of {sorted(SPLIT_FILES)}, got {split!r}.")
        path = os.path.join(data_dir or "", SPLIT_FILES[split])
        if not data_dir or not os.path.isfile(path):
            raise FileNotFoundError(f"ListOps file {path!r} not found: set data.data_dir to the unpacked "
                                    f"lra_release/listops-1000 folder (see flaxzoo/data/listops.py).")
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows and not {"Source", "Target"} <= set(rows[0]):
            raise ValueError(f"{path} must have the columns Source and Target, found {sorted(rows[0])}.")
        self.max_len = max_len
        self.sequences = [encode(r["Source"]) for r in rows]
        self.labels = np.asarray([int(r["Target"]) for r in rows], np.int32)
        self.num_truncated = sum(len(s) > max_len for s in self.sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict:
        seq = self.sequences[i][:self.max_len]
        tokens = np.zeros(self.max_len, np.int32)
        tokens[:len(seq)] = seq
        return {"tokens": tokens, "token_mask": (np.arange(self.max_len) < len(seq)).astype(np.int32),
                "label": self.labels[i]}
