"""A seconds-long Union-of-Experts LM run on CPU (2 layers, 32-character windows): the tests' config.

    python scripts/train.py --config configs/uoe/smoke.py --workdir runs/uoe_smoke

Not a recipe: it only shows the loop works; see configs/uoe/lm_pydoc.py.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "uoe_lm_tiny"
    c.model.kwargs.mode = "trained"
    c.model.kwargs.dim = 32
    c.model.kwargs.hidden_dim = 64
    c.task.name = "lm"
    c.data.train = c.data.eval = "offline:pydoc"
    c.data.preprocess = "tokens"
    c.data.source_kwargs.seq_len = 32
    c.batch_size = 8
    c.total_steps = 20
    c.optim.lr = 3e-3
    c.optim.weight_decay = 0.01
    c.optim.warmup_steps = 2
    c.optim.clip_norm = 1.0
    c.log_every = 5
    c.eval_every = 0
    c.checkpoint_every = 10
    return c
