"""Optimizer from config: AdamW (or SGD) with warm-up + cosine decay and global-norm clipping.

Weight decay skips 1-D parameters (norm scales, biases) and position-bias tables, as the
Swin and ViT recipes do.
"""
from __future__ import annotations

import jax
import optax
from flax import nnx

NO_DECAY_NAMES = ("relative_position_bias_table", "logit_scale", "pos_embed")


def _decay_mask(params: nnx.State):
    def keep(path, leaf):
        names = [str(getattr(p, "key", p)) for p in path]
        return leaf.ndim > 1 and not any(n in NO_DECAY_NAMES for n in names)

    return jax.tree_util.tree_map_with_path(keep, params)


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, warmup + 1),
                                              end_value=cfg.lr * cfg.get("min_lr_ratio", 0.0))


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    schedule = make_schedule(cfg, total_steps)
    if cfg.name == "adamw":
        opt = optax.adamw(schedule, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                          weight_decay=cfg.weight_decay, mask=_decay_mask)
    elif cfg.name == "sgd":
        opt = optax.sgd(schedule, momentum=cfg.get("momentum", 0.9))
    else:
        raise ValueError(f"Unknown optimizer {cfg.name!r}; use 'adamw' or 'sgd'.")
    chain = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.get("clip_norm") else []
    return optax.chain(*chain, opt)
