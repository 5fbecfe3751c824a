"""Defaults shared by every experiment config (configs/<family>/<task>.py); each overrides what it needs.

They live in the package, not in configs/, so a config file loaded by path imports them without sys.path hacks.
"""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict(dict(name="", kwargs=ml_collections.ConfigDict()))
    c.task = ml_collections.ConfigDict(dict(name="", kwargs=ml_collections.ConfigDict()))
    c.data = ml_collections.ConfigDict(dict(
        train="", train_split="train", eval="", eval_split="test", data_dir=None,
        preprocess="", pp=ml_collections.ConfigDict(), source_kwargs=ml_collections.ConfigDict()))
    c.batch_size = 32
    c.total_steps = 1000
    c.optim = ml_collections.ConfigDict(dict(name="adamw", lr=1e-3, weight_decay=0.05, warmup_steps=50,
                                             clip_norm=5.0, min_lr_ratio=0.01, layer_decay=1.0))
    c.compute_dtype = "float32"  # or "bfloat16": model compute; params, optimizer state and loss stay float32
    c.grad_accum_steps = 1  # micro-batches per step (batch_size is the global batch of one optimizer step)
    c.ema_decay = 0.0  # > 0: keep an EMA of the params; eval and model.safetensors use it
    c.best_metric = ""  # e.g. "eval/psnr": also keep the best checkpoint by this eval metric
    c.best_mode = "max"  # or "min"
    # Mesh axes data/fsdp/model; -1 takes the remaining devices. Pure data parallel by default.
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
    c.log_every = 10
    c.eval_every = 100
    c.eval_batches = 0  # 0 = the whole eval split; N caps it at N batches
    c.checkpoint_every = 100
    c.keep_checkpoints = 3
    c.resume = "auto"  # auto | new | require | force: what to do with an existing workdir (train/workdir.py)
    return c
