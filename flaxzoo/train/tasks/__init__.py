"""Tasks: the loss and metrics of a kind of training, separate from the models.

Each task module exposes `make_loss_fn(**config) -> loss_fn(model, batch, rng) -> (loss, metrics)`;
metrics are means over the batch's real examples: a batch may carry `mask` (B,) with 0 for padding
(the loop pads the last eval batch), and a task whose means are over something else (tokens) returns
that amount as the metric `count`, by which the loop weights its batches. A task may also expose
`preview(model, batch) -> images` for the eval image grid.
"""
import difflib
import importlib
import inspect

TASKS = ("classify", "restore", "lm", "field")


def _module(name: str):
    if name not in TASKS:
        close = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown task {name!r}; choose from {TASKS}.{hint}")
    return importlib.import_module(f"flaxzoo.train.tasks.{name}")


def get_loss_fn(name: str, **kwargs):
    make = _module(name).make_loss_fn
    # Checked against the named parameters even if a task also takes **kwargs: a misspelt option
    # must never be silently ignored.
    params = inspect.signature(make).parameters
    allowed = [k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in kwargs:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown option task.kwargs.{key} for task {name!r}.{hint} Its options are {allowed}.")
    return make(**kwargs)


def get_preview_fn(name: str):
    """The task's `preview(model, batch)` (an image grid for TensorBoard), or None."""
    return getattr(_module(name), "preview", None)
