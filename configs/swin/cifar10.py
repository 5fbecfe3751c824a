"""Swin-T on CIFAR-10: from scratch at 32x32, or fine-tuned at 224 from ImageNet weights.

    python scripts/train.py --config configs/swin/cifar10.py:scratch --workdir runs/swin_cifar10
    python scripts/train.py --config configs/swin/cifar10.py:/path/to/swin_tiny_patch4_window7_224.safetensors \
        --workdir runs/swin_cifar10_ft

Data: TFDS `cifar10` (50,000 train / 10,000 test) in ArrayRecord format, built once with
    tfds build cifar10 --file_format=array_record    (downloads 160 MB; the build needs TensorFlow)
The fine-tune argument is any weights file `flaxzoo.create_model(..., checkpoint_path=...)` reads (timm or
Microsoft Swin-T checkpoints, a flaxzoo run's model.safetensors); its 1000-class head is replaced by a
10-class one.

scratch: Swin-T widths with patch 2 and window 4 (a 16x16 token grid at 32x32), the ImageNet augmentation
(RandAugment, Mixup/CutMix, random erasing, label smoothing 0.1), AdamW lr 1e-3 at batch 512, wd 0.05,
200 epochs cosine, 10 warm-up. fine-tune: the Swin paper's fine-tuning recipe (30 epochs, 5 warm-up,
lr 2e-5 per 512, wd 1e-8, drop path 0.1), images upsampled to 224 with the model's own preprocessing.
Target: the Swin paper publishes no CIFAR-10 number, so neither variant has a published target; transfer
results for ImageNet-pretrained Swin-T in the literature are around 98% top-1 (not verified here).
Time: not run here (no CIFAR-10 offline); scratch is ~20k steps at batch 512, a few GPU-hours.
"""

from flaxzoo.train.defaults import base_config

ARGS = ("scratch", "/path/to/weights.safetensors")
TRAIN_IMAGES = 50_000
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def get_config(arg="scratch"):
    arg = arg or "scratch"
    c = base_config()
    c.model.name = "swin_tiny_patch4_window7_224"
    c.model.kwargs.num_classes = 10
    c.task.name = "classify"
    c.task.kwargs.label_smoothing = 0.1
    c.data.train = c.data.eval = "tfds:cifar10"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.data.preprocess = "image_classification"
    c.data.pp.update(dict(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, mixup_alpha=0.8, cutmix_alpha=1.0,
                          num_classes=10))
    c.batch_size = 512
    steps_per_epoch = TRAIN_IMAGES // c.batch_size
    if arg == "scratch":
        c.model.kwargs.update(dict(img_size=32, patch_size=2, window_size=4, drop_path_rate=0.1))
        c.data.pp.update(dict(input_size=32, crop_pct=1.0, interpolation="bicubic", mean=CIFAR_MEAN, std=CIFAR_STD,
                              scale=(0.35, 1.0)))
        epochs, warmup, lr, wd = 200, 10, 1e-3, 0.05
    else:
        c.model.kwargs.checkpoint_path = arg
        c.model.kwargs.drop_path_rate = 0.1
        c.data.pp.model = c.model.name  # the pretrained model's input size, crop_pct, mean/std
        epochs, warmup, lr, wd = 30, 5, 2e-5, 1e-8
    c.total_steps = epochs * steps_per_epoch
    c.optim.update(dict(name="adamw", lr=lr, weight_decay=wd, warmup_steps=warmup * steps_per_epoch,
                        min_lr_ratio=0.01, clip_norm=5.0))
    c.compute_dtype = "bfloat16"
    c.best_metric, c.best_mode = "eval/accuracy", "max"
    c.log_every = 50
    c.eval_every = 5 * steps_per_epoch
    c.eval_batches = 0
    c.checkpoint_every = steps_per_epoch
    return c
