"""The default job (`make train`): a small MAXIM denoiser (sigma 25) on photos bundled with scikit-image.

    make train                                   # = the two commands below, into runs/default
    python scripts/train.py --config configs/maxim/default.py --workdir runs/default
    python scripts/denoise_report.py --workdir runs/default    # runs/default/report/{summary.json, grid.png}

Sized to finish in under 10 minutes on 2 CPU cores, compilation included: one MAXIM stage (the released
architecture: multi-axis gMLP blocks, cross-gating, RCAB) of depth 2 and 16 features (~158k parameters), one
supervision scale, 32x32 training crops, batch 8. On a CPU the XLA compilation of MAXIM's train step costs as
much as hundreds of its steps, and it grows fast with the number of stages, levels and supervised scales: the
2-stage, depth-3, 3-scale model of configs/maxim/denoise.py takes minutes to compile before its first step, which
is why that config's first 20 steps took 5 minutes. See the README (Train) for what this reaches.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_tiny"
    c.model.kwargs.features = 16
    c.model.kwargs.num_stages = 1
    c.model.kwargs.depth = 2
    c.model.kwargs.num_supervision_scales = 1
    c.model.kwargs.conv_init_scale = 0.5  # the official init explodes; see MAXIM's docstring
    c.task.name = "restore"
    c.task.kwargs.freq_weight = 0.1
    c.data.train = c.data.eval = "offline:denoise"
    c.data.preprocess = "denoise"
    c.data.pp.sigma = 25.0
    c.data.source_kwargs.patch = 32
    c.batch_size = 8
    c.total_steps = 1000
    c.optim.lr = 1e-3
    c.optim.weight_decay = 0.0
    c.optim.warmup_steps = 20
    c.optim.clip_norm = 1.0
    c.log_every = 50
    c.eval_every = c.total_steps  # once, at the end (each eval shape is one more compilation)
    c.checkpoint_every = 200
    return c
