"""Every config file in configs/ (each documented arg) builds and names a registered model, task and data path."""
import importlib.util
import inspect
import pathlib

import pytest

from flaxzoo.data import transforms
from flaxzoo.data.pipeline import MIX_KEYS, PACK_KEYS
from flaxzoo.models.registry import get_spec
from flaxzoo.train.tasks import TASKS

CONFIGS = sorted((pathlib.Path(__file__).parents[1] / "configs").glob("*/*.py"))
CREATE_MODEL_KEYS = {"checkpoint_path", "pretrained", "num_classes"}  # create_model's own, not the builder's
SOURCE_KINDS = ("offline", "tfds", "folder", "lra", "field")


def load(path):
    spec = importlib.util.spec_from_file_location(f"config_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variants():
    for path in CONFIGS:
        for arg in getattr(load(path), "ARGS", (None,)):
            yield pytest.param(path, arg, id=f"{path.parent.name}/{path.stem}:{arg}")


@pytest.mark.parametrize("path,arg", list(variants()))
def test_config_builds_and_names_what_exists(path, arg):
    module = load(path)
    assert module.__doc__ and "scripts/train.py" in module.__doc__, "the docstring must give the command"
    c = module.get_config(arg) if arg is not None else module.get_config()
    spec = get_spec(c.model.name)
    builder_params = inspect.signature(spec.builder).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in builder_params.values()):
        unknown = set(c.model.kwargs) - set(builder_params) - CREATE_MODEL_KEYS
        assert not unknown, f"{c.model.name} takes no {sorted(unknown)}"
    assert c.task.name in TASKS
    for name in (c.data.train, c.data.eval):
        assert name.partition(":")[0] in SOURCE_KINDS, name
    pp = {k: v for k, v in c.data.pp.items() if k not in MIX_KEYS + PACK_KEYS}
    for train in (True, False):
        transforms.get(c.data.preprocess, train=train, **pp)  # unknown pp keys or bad values raise here
    assert c.total_steps > 0 and c.batch_size > 0


def test_swin_imagenet_recipe_numbers():
    module = load(next(p for p in CONFIGS if p.parent.name == "swin" and p.stem == "imagenet1k"))
    c = module.get_config("small")
    assert c.model.name == "swin_small_patch4_window7_224" and c.model.kwargs.drop_path_rate == 0.3
    assert c.total_steps == 300 * 1251 and c.optim.warmup_steps == 20 * 1251 and c.batch_size == 1024
    assert (c.optim.lr, c.optim.weight_decay, c.optim.clip_norm) == (1e-3, 0.05, 5.0)
    assert (c.data.pp.mixup_alpha, c.data.pp.cutmix_alpha, c.data.pp.re_prob) == (0.8, 1.0, 0.25)
    assert c.task.kwargs.label_smoothing == 0.1 and c.ema_decay == 0.0
    with pytest.raises(ValueError, match="tiny"):
        module.get_config("huge")
