"""Swin-T/S/B on ImageNet-1k from scratch, the paper's recipe (Liu et al. 2021, Sec. 4.1; the official config.py).

    python scripts/train.py --config configs/swin/imagenet1k.py:tiny --workdir runs/swin_tiny_in1k
    (small / base likewise; add --config.data.data_dir=<dir> if TFDS data is not in ~/tensorflow_datasets)

Data: ILSVRC2012 as the TFDS dataset `imagenet2012` in ArrayRecord format (1,281,167 train images, 50,000
validation). Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org (an account is
needed) into <data_dir>/downloads/manual/, then build it once:
    tfds build imagenet2012 --file_format=array_record --data_dir=<data_dir>
(the build needs TensorFlow, `pip install tensorflow-cpu`; training reads it without TensorFlow).

Recipe: AdamW (0.9, 0.999), lr 1e-3 at global batch 1024 (5e-4 per 512, scale linearly if you change the
batch), weight decay 0.05 (not on norms, biases, position tables), 300 epochs cosine to 1e-5 after 20 linear
warm-up epochs, gradient clip 5.0, stochastic depth 0.2 / 0.3 / 0.5, label smoothing 0.1, RandAugment
rand-m9-mstd0.5-inc1 (the official string), Mixup 0.8 + CutMix 1.0 (switch 0.5, every batch), random erasing
0.25 (pixel mode), bicubic random-resized crops and flips at 224; eval resize 256 + centre crop 224; no EMA.
The paper trained with fp16 AMP; here bfloat16 compute with float32 parameters.
Target: top-1 81.2 (T) / 83.2 (S) / 83.5 (B) on the validation set (`eval/accuracy`).
Time: not run here (no ImageNet offline). Swin-T costs about 27 GFLOP per trained image, 1e19 FLOP for the run:
roughly a day on 8 current datacenter GPUs at a realistic utilisation, S about 2x and B about 3.5x that.
If memory is short, keep batch_size 1024 and raise grad_accum_steps.
"""

from flaxzoo.train.defaults import base_config

ARGS = ("tiny", "small", "base")
TRAIN_IMAGES = 1_281_167
DROP_PATH = {"tiny": 0.2, "small": 0.3, "base": 0.5}


def get_config(arg="tiny"):
    arg = arg or "tiny"
    if arg not in DROP_PATH:
        raise ValueError(f"configs/swin/imagenet1k.py takes one of {ARGS}, got {arg!r}.")
    model = f"swin_{arg}_patch4_window7_224"
    c = base_config()
    c.model.name = model
    c.model.kwargs.drop_path_rate = DROP_PATH[arg]
    # speed switches, same numbers (flaxzoo.models.swin): --config.model.kwargs.attn_impl=fused, .remat=dots
    c.model.kwargs.attn_impl = "xla"
    c.model.kwargs.remat = "none"
    c.task.name = "classify"
    c.task.kwargs.label_smoothing = 0.1
    c.data.train = c.data.eval = "tfds:imagenet2012"
    c.data.train_split, c.data.eval_split = "train", "validation"
    c.data.preprocess = "image_classification"
    c.data.pp.update(dict(model=model, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel",
                          mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=1.0, switch_prob=0.5, num_classes=1000))

    c.batch_size = 1024
    steps_per_epoch = TRAIN_IMAGES // c.batch_size  # 1251 (the last partial batch of an epoch is dropped)
    c.total_steps = 300 * steps_per_epoch
    c.optim.update(dict(name="adamw", lr=1e-3, b1=0.9, b2=0.999, weight_decay=0.05,
                        warmup_steps=20 * steps_per_epoch, min_lr_ratio=0.01, clip_norm=5.0))
    c.compute_dtype = "bfloat16"
    c.ema_decay = 0.0
    c.best_metric, c.best_mode = "eval/accuracy", "max"
    c.log_every = 100
    c.eval_every = 5 * steps_per_epoch
    c.eval_batches = 0  # the whole validation split
    c.checkpoint_every = steps_per_epoch
    return c
