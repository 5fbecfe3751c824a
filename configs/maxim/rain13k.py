"""MAXIM-2S for deraining on Rain13k (Tu et al. 2022), the paper's training setup.

    python scripts/train.py --config configs/maxim/rain13k.py --workdir runs/maxim_rain13k \
        --config.data.data_dir=/data/derain_pairs --config.data.eval_split=Rain100L

Data: Rain13k for training (13,712 rainy/clean pairs collected from several synthetic sets) and the five test
sets Test100, Rain100H, Rain100L, Test2800, Test1200 (the MPRNet/Restormer deraining download). Prepare
paired folders (`folder:pairs`, see flaxzoo/data/folder.py), one split per folder:
    <data_dir>/train/{input,target}/   <data_dir>/Rain100L/{input,target}/   ... one per test set
Recipe: random 256x256 crops with flips and 90-degree rotations; Adam (0.9, 0.99), no weight decay, lr 2e-4
cosine-decayed to 1e-7 (a 1k-step warm-up added), batch 32; Charbonnier + 0.1 x frequency loss. As for
sidd.py, these are the paper's values as we recall them; check before a long run.
Eval: full test images padded to a 512x512 canvas (`pixel_mask` marks the real pixels); raise
data.pp.eval_size for a set with larger images.
Target (PSNR / SSIM on the Y channel, the deraining convention): Test100 31.17 / 0.922, Rain100H 30.81 / 0.903,
Rain100L 38.06 / 0.977, Test2800 33.80 / 0.943, Test1200 32.37 / 0.922; mean 33.24 / 0.933. `eval/psnr` in
training is RGB, so it reads lower than these; score the Y channel with the benchmark script.
Time: not run here (no Rain13k offline); MAXIM-2S is about 2/3 of the cost of sidd.py.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_s2"
    c.model.kwargs.conv_init_scale = 0.5  # the official init explodes; see MAXIM's docstring
    c.task.name = "restore"
    c.task.kwargs.update(dict(freq_weight=0.1, charbonnier_eps=1e-3))
    c.data.train = c.data.eval = "folder:pairs"
    c.data.train_split, c.data.eval_split = "train", "Rain100L"
    c.data.preprocess = "paired"
    c.data.pp.update(dict(patch=256, flips=True, rotations=True, eval_size=(512, 512)))
    c.batch_size = 32
    c.total_steps = 300_000
    c.optim.update(dict(name="adamw", lr=2e-4, b1=0.9, b2=0.99, weight_decay=0.0, warmup_steps=1000,
                        min_lr_ratio=1e-7 / 2e-4, clip_norm=0.0))
    c.compute_dtype = "bfloat16"
    c.best_metric, c.best_mode = "eval/psnr", "max"
    c.log_every = 100
    c.eval_every = 20_000
    c.eval_batches = 0
    c.checkpoint_every = 5_000
    return c
