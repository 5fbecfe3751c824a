"""Train MAXIM for Gaussian denoising (sigma 25) on real photos bundled with scikit-image (offline).

    python scripts/train.py --config configs/maxim/denoise.py --workdir runs/maxim_denoise

The default is a small 2-stage MAXIM on 64x64 crops so a CPU run finishes in minutes; for a
real run pick a paper variant and data, e.g.
    --config.model.name=maxim_s3 --config.data.train=tfds:<your prepared dataset> --config.batch_size=32
Loss: Charbonnier + 0.1 * frequency loss over every stage and scale (the paper's); eval reports
PSNR of the final output on held-out photos.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_tiny"
    c.model.kwargs.features = 16
    c.model.kwargs.conv_init_scale = 0.5  # the official init explodes; see MAXIM's docstring
    c.task.name = "restore"
    c.task.kwargs.freq_weight = 0.1
    c.data.train = c.data.eval = "offline:denoise"
    c.data.preprocess = "denoise"
    c.data.pp.sigma = 25.0
    c.data.source_kwargs.patch = 64
    c.batch_size = 8
    c.total_steps = 400
    c.optim.lr = 2e-4
    c.optim.weight_decay = 0.0
    c.optim.warmup_steps = 20
    c.optim.clip_norm = 1.0
    c.eval_every = 200
    c.eval_batches = 8
    c.checkpoint_every = 200
    return c
