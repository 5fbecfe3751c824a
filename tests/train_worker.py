"""Runs flaxzoo.train.loop.train on a smoke config in a fresh process (for the SIGTERM test).

    python tests/train_worker.py <family> <workdir> [key=value ...]   (values parsed as Python literals)
"""
import ast
import importlib.util
import os
import pathlib
import sys

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def smoke_config(family: str, overrides):
    path = pathlib.Path(__file__).parents[1] / "configs" / family / "smoke.py"
    spec = importlib.util.spec_from_file_location(f"{family}_smoke", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    for item in overrides:
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = c
        for p in parents:
            node = node[p]
        node[leaf] = ast.literal_eval(value)
    return c


if __name__ == "__main__":
    from flaxzoo.train.loop import train

    train(smoke_config(sys.argv[1], sys.argv[3:]), sys.argv[2])
