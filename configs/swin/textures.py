"""A small Swin classifier on real texture patches bundled with scikit-image (offline).

    python scripts/train.py --config configs/swin/textures.py --workdir runs/swin_textures

10 classes (brick, grass, gravel, ...), 32x32 patches upsampled to 64x64. On a 2-core CPU
this reaches well above chance (10%) in a few minutes; see README for the figure measured.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "swin_test_tiny"
    c.model.kwargs.num_classes = 10
    c.model.kwargs.img_size = 64
    c.model.kwargs.in_chans = 1
    c.model.kwargs.embed_dim = 32
    c.model.kwargs.depths = (2, 2, 2)
    c.model.kwargs.num_heads = (2, 4, 8)
    c.task.name = "classify"
    c.task.kwargs.label_smoothing = 0.1
    c.data.train = c.data.eval = "offline:textures"
    c.data.preprocess = "classify"
    c.data.pp.size = 64
    c.batch_size = 32
    c.total_steps = 300
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 30
    c.eval_every = 100
    return c
