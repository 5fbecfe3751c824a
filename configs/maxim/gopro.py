"""MAXIM-3S for motion deblurring on GoPro (Tu et al. 2022), the paper's training setup.

    python scripts/train.py --config configs/maxim/gopro.py --workdir runs/maxim_gopro \
        --config.data.data_dir=/data/gopro_pairs

Data: GOPRO_Large (2,103 train / 1,111 test blurry-sharp pairs, 1280x720; download from the GoPro dataset
page). Prepare paired folders (`folder:pairs`, see flaxzoo/data/folder.py): the blurred frames in
<data_dir>/{train,test}/input/ and the sharp ones, same names, in <data_dir>/{train,test}/target/.
Recipe: random 256x256 crops with flips and 90-degree rotations; Adam (0.9, 0.99), no weight decay, lr 2e-4
cosine-decayed to 1e-7 (a 1k-step warm-up added), batch 32; Charbonnier + 0.1 x frequency loss over every
stage and scale. As for sidd.py: the official training code was never released and these values are the
paper's as we recall them, with MPRNet/Restormer practice where it is silent; check before a long run.
Eval: full 1280x720 test images, padded (mirrored) to a 768x1280 canvas because MAXIM needs multiples of 64;
the batch carries `pixel_mask` for the real pixels. A full-size eval batch is memory-hungry: lower batch_size
for eval runs, or evaluate the trained weights with the benchmark script instead.
Target: 32.86 dB PSNR / 0.961 SSIM on the GoPro test set (32.83 / 0.956 on HIDE with the same weights).
Time: not run here (no GoPro offline); the same order as sidd.py.
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    c = base_config()
    c.model.name = "maxim_s3"
    c.model.kwargs.conv_init_scale = 0.5  # the official init explodes; see MAXIM's docstring
    c.task.name = "restore"
    c.task.kwargs.update(dict(freq_weight=0.1, charbonnier_eps=1e-3))
    c.data.train = c.data.eval = "folder:pairs"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.data.preprocess = "paired"
    c.data.pp.update(dict(patch=256, flips=True, rotations=True, eval_size=(768, 1280)))
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
