"""The smallest MAXIM denoising run (1 stage, depth 1, 4 features, 16x16 crops): the tests' config.

Compiling even this MAXIM's train step takes about a minute on a 2-core CPU (the model is many small ops);
the steps themselves take milliseconds.

    python scripts/train.py --config configs/maxim/smoke.py --workdir runs/maxim_smoke

Not a recipe: it only shows the loop works; see configs/maxim/denoise.py.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_tiny"
    c.model.kwargs.features = 4
    c.model.kwargs.num_stages = 1
    c.model.kwargs.depth = 1
    c.model.kwargs.num_supervision_scales = 1
    c.model.kwargs.block_size_hr = c.model.kwargs.grid_size_hr = (2, 2)
    c.model.kwargs.block_size_lr = c.model.kwargs.grid_size_lr = (2, 2)
    c.model.kwargs.conv_init_scale = 0.5
    c.task.name = "restore"
    c.data.train = c.data.eval = "offline:denoise"
    c.data.preprocess = "denoise"
    c.data.pp.sigma = 25.0
    c.data.source_kwargs.patch = 16
    c.data.source_kwargs.num = 64
    c.batch_size = 8
    c.total_steps = 20
    c.optim.lr = 2e-4
    c.optim.weight_decay = 0.0
    c.optim.warmup_steps = 2
    c.optim.clip_norm = 1.0
    c.log_every = 5
    c.eval_every = 0
    c.checkpoint_every = 10
    return c
