"""Tasks: the loss and metrics of a kind of training, separate from the models.

Each task module exposes `make_loss_fn(**config) -> loss_fn(model, batch, rng) -> (loss, metrics)`.
"""
import importlib

TASKS = ("classify", "restore", "lm")


def get_loss_fn(name: str, **kwargs):
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {TASKS}.")
    return importlib.import_module(f"flaxzoo.train.tasks.{name}").make_loss_fn(**kwargs)
