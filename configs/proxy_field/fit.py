"""Fit one shape with a hierarchical proxy-node field (after HPR3D): `fit.py:SHAPE`.

    python scripts/train.py --config configs/proxy_field/fit.py:builtin:ant --workdir runs/proxy_ant
    python scripts/train.py --config configs/proxy_field/fit.py:my_mesh.ply --workdir runs/proxy_mine \
        --config.model.name=proxy_field_512

SHAPE is builtin:NAME (ant, nut, torus, sphere, rounded_box, union) or a watertight mesh file (default
builtin:ant). The nodes are placed from the same shape (`model.kwargs.shape`). Rerunning the same command
resumes, as every run does. Ground truth: 131k exact SDF samples (40% surface, 40% near, 20% uniform),
batch 16 x 512 points, 3000 Adam steps, no weight decay (a field's codes are not regularised towards 0).
Measure the result with scripts/fit_shape.py (marching cubes, Chamfer, F-score, IoU, colour PSNR).
Time: proxy_field_64 on 2 loaded CPU cores, see BENCHMARKS.md "Proxy-node fields".
"""

from flaxzoo.train.defaults import base_config


def get_config(arg=None):
    shape = arg or "builtin:ant"
    c = base_config()
    c.model.name = "proxy_field_64"
    c.model.kwargs.shape = shape
    c.task.name = "field"
    c.data.train = c.data.eval = f"field:{shape}"
    c.data.train_split, c.data.eval_split = "train", "test"
    c.data.preprocess = "field"
    c.data.source_kwargs.update(dict(num_points=131072, chunk=512))
    c.batch_size = 16
    c.total_steps = 3000
    c.optim.update(dict(name="adamw", lr=3e-3, weight_decay=0.0, warmup_steps=100, min_lr_ratio=0.05,
                        clip_norm=1.0))
    c.log_every = 100
    c.eval_every = 0
    c.checkpoint_every = 500
    return c
