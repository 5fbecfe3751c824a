"""Input pipelines: a random-access source -> grain -> per-process global batches.

Sources are either TFDS datasets read with `tfds.data_source` (ArrayRecord, no TensorFlow
needed) or the offline sets in `flaxzoo.data.offline`. grain gives deterministic shuffling,
per-process sharding and an iterator state that the checkpoint stores, so a resumed run
sees exactly the batches it would have seen.
"""
from __future__ import annotations

import grain
import jax
import numpy as np

from flaxzoo.data import offline, text, transforms

OFFLINE = {"textures": offline.TexturePatches, "denoise": offline.DenoiseCrops, "pydoc": text.PydocWindows}


def make_source(name: str, split: str, *, data_dir: str | None = None, **kwargs):
    """`offline:<set>` or `tfds:<dataset>` (e.g. `tfds:div2k/bicubic_x2`) -> a random-access source."""
    kind, _, dataset = name.partition(":")
    if kind == "offline":
        if dataset not in OFFLINE:
            raise ValueError(f"Unknown offline dataset {dataset!r}; choose from {sorted(OFFLINE)}.")
        return OFFLINE[dataset](split=split, **kwargs)
    if kind == "tfds":
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise ImportError("TFDS sources need tensorflow-datasets: pip install tensorflow-datasets") from e

        try:
            return tfds.data_source(dataset, split=split, data_dir=data_dir, download=False)
        except Exception as e:  # not prepared, unknown name, wrong split: say what to do
            raise ValueError(f"Could not open TFDS dataset {dataset!r} split {split!r} (data_dir={data_dir}): {e}. "
                             f"Prepare it first (tfds build {dataset} --file_format=array_record) or fix the name.") from e
    raise ValueError(f"Dataset name must look like 'offline:textures' or 'tfds:imagenet2012', got {name!r}.")


def make_dataset(source, *, preprocess: str, global_batch: int, seed: int, train: bool, **pp_kwargs):
    """A grain dataset yielding this process's share of each global batch as numpy dicts."""
    if global_batch % jax.process_count():
        raise ValueError(f"Global batch {global_batch} must be divisible by the process count {jax.process_count()}.")
    local_batch = global_batch // jax.process_count()
    fn = transforms.get(preprocess, **pp_kwargs)
    ds = grain.MapDataset.source(source)
    if train:
        ds = ds.shuffle(seed=seed).repeat()
    # Index-seeded transforms: augmentation/noise is a function of (seed, global example index), so
    # it is reproducible after a resume and the same whatever the number of processes or workers.
    ds = ds.random_map(fn, seed=seed) if train else ds.map(lambda ex: fn(ex, np.random.default_rng(0)))
    if jax.process_count() > 1:
        # Process p reads block p of every global batch, so the global batch (and its order) is the
        # same whatever the number of processes. Lazy: each process transforms only its own examples.
        full, rank = ds, jax.process_index()
        ds = grain.MapDataset.range(len(full) // jax.process_count()).map(
            lambda i: full[(i // local_batch) * global_batch + rank * local_batch + i % local_batch])
    return ds.batch(local_batch, drop_remainder=train)
