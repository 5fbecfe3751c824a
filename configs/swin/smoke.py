"""A seconds-long Swin run on CPU (textures, 32x32, one block per stage): the tests' and benchmarks' config.

    python scripts/train.py --config configs/swin/smoke.py --workdir runs/swin_smoke

Not a recipe: it only shows the loop works (loss falls from about 2.3); see configs/swin/textures.py.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "swin_test_tiny"
    c.model.kwargs.num_classes = 10
    c.model.kwargs.img_size = 32
    c.model.kwargs.in_chans = 1
    c.model.kwargs.embed_dim = 8
    c.model.kwargs.depths = (1, 1)
    c.model.kwargs.num_heads = (1, 2)
    c.task.name = "classify"
    c.data.train = c.data.eval = "offline:textures"
    c.data.preprocess = "classify"
    c.data.pp.size = 32
    c.data.source_kwargs.per_image = 16
    c.batch_size = 8
    c.total_steps = 20
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 2
    c.log_every = 5
    c.eval_every = 0
    c.checkpoint_every = 10
    return c
