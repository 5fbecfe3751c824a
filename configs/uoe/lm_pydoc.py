"""A character-level Union-of-Experts LM on the English text bundled with CPython (offline).

    python scripts/train.py --config configs/uoe/lm_pydoc.py --workdir runs/uoe_lm_pydoc

SMHA (top-2 of 4 heads) + UoME (top-2 of 4 experts) in `trained` mode: gate-weighted combine
with load-balancing and z-loss auxiliaries. Train on the first 90% of the pydoc topics, evaluate
bits per character on the rest.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "uoe_lm_tiny"
    c.model.kwargs.mode = "trained"
    c.task.name = "lm"
    c.data.train = c.data.eval = "offline:pydoc"
    c.data.preprocess = "tokens"
    c.data.source_kwargs.seq_len = 128
    c.batch_size = 32
    c.total_steps = 500
    c.optim.lr = 3e-3
    c.optim.weight_decay = 0.01
    c.optim.warmup_steps = 50
    c.optim.clip_norm = 1.0
    c.eval_every = 250
    c.eval_batches = 16
    c.checkpoint_every = 250
    return c
