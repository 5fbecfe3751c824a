"""Optimizer from config: AdamW (or SGD) with warm-up + cosine decay, global-norm clipping,
weight decay masked as timm does, and optional layer-wise learning-rate decay.

Weight decay skips (timm's `param_groups_weight_decay` + Swin's `no_weight_decay`): every
parameter with fewer than 2 dimensions (norm scales, biases, V2's `logit_scale`, `q_bias`,
`v_bias`), position tables (`relative_position_bias_table`, `absolute_pos_embed`, `pos_embed`)
and Swin V2's continuous position bias MLP (timm's `cpb_mlp`, flaxzoo's `cpb`).

Layer-wise LR decay (`optim.layer_decay` < 1, for fine-tuning, as in BEiT/SimMIM): the update of
a parameter at depth d is scaled by layer_decay ** (D - d). Depth comes from the parameter path:
  - embeddings (a path through `patch_embed`, `embed`, `pos_embed`, `absolute_pos_embed`) are 0;
  - a parameter inside a numbered block has the block's rank + 1, blocks ranked by the integer
    indices on their path: Swin `layers.i.blocks.j` (a stage's `downsample`, `layers.i.downsample`,
    goes with that stage's first block, as in timm), UoE `blocks.i`, MAXIM `stages.s`;
  - everything else (final norm, head) is D = number of blocks + 1, at the full learning rate.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed", "pos_embed", "cpb", "cpb_mlp",
                  "logit_scale")
EMBED_NAMES = ("patch_embed", "embed", "pos_embed", "absolute_pos_embed")


def _names(path) -> list:
    return [getattr(p, "key", getattr(p, "idx", p)) for p in path]


def decay_mask(params: nnx.State):
    """True where weight decay applies."""
    def keep(path, leaf):
        return leaf.ndim > 1 and not any(str(n) in NO_DECAY_NAMES for n in _names(path))

    return jax.tree_util.tree_map_with_path(keep, params)


def _block_id(path) -> tuple[int, ...]:
    return tuple(n for n in _names(path) if isinstance(n, int) or (isinstance(n, str) and n.isdigit()))


def layer_depths(params: nnx.State) -> tuple[dict, int]:
    """{path: depth} for every parameter, and the maximum depth D (see the module docstring)."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    ids = {tuple(int(i) for i in _block_id(path)) for path, _ in leaves}
    width = max((len(i) for i in ids), default=0)
    padded = lambda i: i + (0,) * (width - len(i))  # noqa: E731  (i,) ranks with (i, 0): downsample + first block
    ranks = {b: r + 1 for r, b in enumerate(sorted({padded(i) for i in ids if i}))}
    top = len(ranks) + 1
    depths = {}
    for path, _ in leaves:
        block = tuple(int(i) for i in _block_id(path))
        if block:
            depths[path] = ranks[padded(block)]
        elif any(str(n) in EMBED_NAMES for n in _names(path)):
            depths[path] = 0
        else:
            depths[path] = top
    return depths, top


def scale_by_layer_decay(layer_decay: float) -> optax.GradientTransformation:
    """Multiply each update by layer_decay ** (D - depth)."""
    def update(updates, state, params=None):
        depths, top = layer_depths(updates)
        scaled = jax.tree_util.tree_map_with_path(
            lambda path, u: u * jnp.asarray(layer_decay ** (top - depths[path]), u.dtype), updates)
        return scaled, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to lr over `warmup_steps`, then cosine to lr * min_lr_ratio at `total_steps`."""
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, warmup + 1),
                                              end_value=cfg.lr * cfg.get("min_lr_ratio", 0.0))


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    schedule = make_schedule(cfg, total_steps)
    if cfg.name == "adamw":
        opt = optax.adamw(schedule, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                          weight_decay=cfg.weight_decay, mask=decay_mask)
    elif cfg.name == "sgd":
        opt = optax.sgd(schedule, momentum=cfg.get("momentum", 0.9))
    else:
        raise ValueError(f"Unknown optimizer {cfg.name!r}; use 'adamw' or 'sgd'.")
    chain = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.get("clip_norm") else []
    layer_decay = cfg.get("layer_decay", 1.0)
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"optim.layer_decay must be in (0, 1] (1 = off), got {layer_decay}.")
    # After the optimizer: scaling the final update is scaling that parameter's learning rate (its Adam step
    # and its decoupled weight decay); scaling the gradient before Adam would do nothing.
    after = [scale_by_layer_decay(layer_decay)] if layer_decay < 1.0 else []
    return optax.chain(*chain, opt, *after)
