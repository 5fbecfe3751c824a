"""MAXIM-3S for real-image denoising on SIDD (Tu et al. 2022), the paper's training setup.

    python scripts/train.py --config configs/maxim/sidd.py --workdir runs/maxim_sidd \
        --config.data.data_dir=/data/sidd_pairs

Data: SIDD-Medium sRGB (320 noisy/clean pairs of 12-megapixel phone photos; register and download from the
SIDD site). Prepare paired folders (`folder:pairs`, see flaxzoo/data/folder.py):
    <data_dir>/train/input/*.png, <data_dir>/train/target/*.png   e.g. the 512x512 crops of Restormer's
                                                                   generate_patches_sidd.py
    <data_dir>/val/input/*.png,   <data_dir>/val/target/*.png     the 1,280 256x256 validation blocks of
                                                                   ValidationNoisyBlocksSrgb.mat / ...GtBlocksSrgb.mat
Recipe: random 256x256 crops with flips and 90-degree rotations; Adam (0.9, 0.99), no weight decay, lr 2e-4
cosine-decayed to 1e-7 (a 1k-step warm-up added), batch 32; loss Charbonnier (eps 1e-3) + 0.1 x frequency
(FFT L1) over every stage and scale. The official training code was never released and our reference notes
do not hold the paper's recipe text: these values are the paper's as we recall them, with MPRNet/Restormer
practice where it is silent (batch, step count); check them against the paper before a long run.
Target: 39.96 dB PSNR / 0.960 SSIM on the SIDD validation blocks (RGB, as `eval/psnr` computes it).
Time: not run here (no SIDD offline). MAXIM-3S costs about 340 GFLOP per 256x256 forward, so about 1 TFLOP
per trained patch and 1e19 FLOP for 300k steps of batch 32: days on 8 current GPUs (an estimate).
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_s3"
    c.model.kwargs.conv_init_scale = 0.5  # the official init explodes; see MAXIM's docstring
    c.task.name = "restore"
    c.task.kwargs.update(dict(freq_weight=0.1, charbonnier_eps=1e-3))
    c.data.train = c.data.eval = "folder:pairs"
    c.data.train_split, c.data.eval_split = "train", "val"
    c.data.preprocess = "paired"
    c.data.pp.update(dict(patch=256, flips=True, rotations=True))  # eval: the 256x256 blocks as they are
    c.batch_size = 32
    c.total_steps = 300_000
    c.optim.update(dict(name="adamw", lr=2e-4, b1=0.9, b2=0.99, weight_decay=0.0, warmup_steps=1000,
                        min_lr_ratio=1e-7 / 2e-4, clip_norm=0.0))
    c.compute_dtype = "bfloat16"
    c.best_metric, c.best_mode = "eval/psnr", "max"
    c.log_every = 100
    c.eval_every = 10_000
    c.eval_batches = 0
    c.checkpoint_every = 5_000
    return c
