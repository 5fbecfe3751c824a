"""Input pipelines: a random-access source -> grain -> per-process global batches.

Sources are TFDS datasets read with `tfds.data_source` (ArrayRecord, no TensorFlow needed; images
arrive decoded, any size), the offline sets in `flaxzoo.data.offline`, paired image folders, or LRA ListOps files. grain gives deterministic shuffling,
per-process sharding and an iterator state that the checkpoint stores, so a resumed run
sees exactly the batches it would have seen.
"""
from __future__ import annotations

import grain
import jax
import numpy as np

from flaxzoo.data import field_samples, folder, listops, offline, text, transforms
from flaxzoo.data.mixup import mix_batch

OFFLINE = {"textures": offline.TexturePatches, "denoise": offline.DenoiseCrops, "pydoc": text.PydocWindows}
MIX_KEYS = ("mixup_alpha", "cutmix_alpha", "mix_prob", "switch_prob", "num_classes")
PACK_KEYS = ("seq_len", "stride", "text_key")


def make_source(name: str, split: str, *, data_dir: str | None = None, **kwargs):
    """A random-access source: `offline:<set>`, `tfds:<dataset>` (e.g. `tfds:imagenet2012`), `folder:pairs`
    (restoration pairs in <data_dir>/<split>/{input,target}/), `lra:listops`, or `field:<shape>` (SDF samples of
    `builtin:NAME` or a mesh file, `flaxzoo.data.field_samples`)."""
    kind, _, dataset = name.partition(":")
    if kind == "field":
        return field_samples.FieldSamples(split, shape=dataset, **kwargs)
    if kind == "offline":
        if dataset not in OFFLINE:
            raise ValueError(f"Unknown offline dataset {dataset!r}; choose from {sorted(OFFLINE)}.")
        return OFFLINE[dataset](split=split, **kwargs)
    if kind == "folder":
        if dataset != "pairs":
            raise ValueError(f"Only 'folder:pairs' is supported, got {name!r}.")
        return folder.PairedFolder(split, data_dir=data_dir, **kwargs)
    if kind == "lra":
        if dataset != "listops":
            raise ValueError(f"Only 'lra:listops' is supported, got {name!r}.")
        return listops.ListOps(split, data_dir=data_dir, **kwargs)
    if kind == "tfds":
        if kwargs:
            raise ValueError(f"data.source_kwargs {sorted(kwargs)} are not used by TFDS sources; put preprocessing "
                             f"settings in data.pp.")
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise ImportError("TFDS sources need tensorflow-datasets: pip install tensorflow-datasets") from e
        import flaxzoo.data.benchmarks  # noqa: F401 - registers the benchmark builders (tfds:sidd, tfds:gopro, ...)

        try:
            return tfds.data_source(dataset, split=split, data_dir=data_dir, download=False)
        except Exception as e:  # not prepared, unknown name, wrong split: say what to do
            raise ValueError(f"Could not open TFDS dataset {dataset!r} split {split!r} (data_dir={data_dir}): {e}. "
                             f"Prepare it first (tfds build {dataset} --file_format=array_record) or fix the name.") from e
    raise ValueError(f"Dataset name must look like 'offline:textures', 'tfds:imagenet2012', 'folder:pairs' or "
                     f"'lra:listops' or 'field:builtin:ant', got {name!r}.")


def stack(examples: list[dict]) -> dict:
    """One batch from examples; examples of different shapes get a clear message, not numpy's."""
    shapes = {k: {np.shape(e[k]) for e in examples} for k in examples[0]}
    ragged = {k: sorted(v) for k, v in shapes.items() if len(v) > 1}
    if ragged:
        raise ValueError(f"Examples in one batch differ in shape {ragged}: crop or resize them to one size "
                         f"(data.pp.patch / input_size), pad them to a canvas (data.pp.eval_size), or use batch 1.")
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def make_dataset(source, *, preprocess: str, global_batch: int, seed: int, train: bool, **pp_kwargs):
    """A grain dataset yielding this process's share of each global batch as numpy dicts.

    `pp_kwargs` are `config.data.pp`: the example transform's settings (see `flaxzoo.data.transforms`),
    plus Mixup/CutMix (`MIX_KEYS`, training only) and text packing (`PACK_KEYS`, preprocess 'bytes_lm').
    """
    if global_batch % jax.process_count():
        raise ValueError(f"Global batch {global_batch} must be divisible by the process count {jax.process_count()}.")
    local_batch = global_batch // jax.process_count()
    pp = dict(pp_kwargs)
    mix = {k: pp.pop(k) for k in MIX_KEYS if k in pp}
    if preprocess == "bytes_lm":
        source = text.PackedBytes(source, **{k: pp.pop(k) for k in PACK_KEYS if k in pp})
    mixing = train and (mix.get("mixup_alpha", 0) > 0 or mix.get("cutmix_alpha", 0) > 0)
    if mixing and not mix.get("num_classes"):
        raise ValueError("Mixup/CutMix make soft targets over the classes: set data.pp.num_classes.")
    fn = transforms.get(preprocess, train=train, **pp)
    ds = grain.MapDataset.source(source)
    if train:
        ds = ds.shuffle(seed=seed).repeat()
        # Index-seeded transforms: augmentation/noise is a function of (seed, global example index), so
        # it is reproducible after a resume and the same whatever the number of processes or workers.
        ds = ds.random_map(fn, seed=seed)
    else:  # eval: still one generator per example (its own noise field), fixed by (seed, index)
        ds = ds.map_with_index(lambda i, ex: fn(ex, np.random.default_rng((seed, 1, i))))
    if jax.process_count() > 1:
        # Process p reads block p of every global batch, so the global batch (and its order) is the
        # same whatever the number of processes. Lazy: each process transforms only its own examples.
        full, rank = ds, jax.process_index()
        ds = grain.MapDataset.range(len(full) // jax.process_count()).map(
            lambda i: full[(i // local_batch) * global_batch + rank * local_batch + i % local_batch])
    ds = ds.batch(local_batch, drop_remainder=train, batch_fn=stack)
    if mixing:  # one lambda per batch, from (seed, batch index): the same after a resume. With several
        # processes each mixes within its own share of the batch (same lambda, partners from its share).
        settings = dict(num_classes=int(mix["num_classes"]), mixup_alpha=float(mix.get("mixup_alpha", 0.0)),
                        cutmix_alpha=float(mix.get("cutmix_alpha", 0.0)), prob=float(mix.get("mix_prob", 1.0)),
                        switch_prob=float(mix.get("switch_prob", 0.5)))
        ds = ds.map_with_index(lambda b, batch: mix_batch(batch, np.random.default_rng((seed, 2, b)), **settings))
    return ds
