"""The training loop. Read it top to bottom: config -> mesh -> model -> data -> steps.

One loop for every family and task. The config names a registered model, a task (loss and
metrics), a dataset and an optimizer; `flaxzoo.train.sharding` turns the model's logical
axis names into shardings over the mesh, so data/FSDP/tensor/expert parallelism are config
switches. Runs resume from the newest checkpoint in the workdir, data iterator included.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from flaxzoo.data.pipeline import make_dataset, make_source
from flaxzoo.models.convert.common import save_params
from flaxzoo.models.registry import create_model
from flaxzoo.train.checkpoint import Checkpointer
from flaxzoo.train.metrics import MetricWriter
from flaxzoo.train.optim import make_optimizer
from flaxzoo.train.sharding import batch_sharding, make_mesh, state_shardings
from flaxzoo.train.step import TrainState, init_train_state, train_step
from flaxzoo.train.tasks import get_loss_fn
from flaxzoo.train.workdir import prepare as prepare_workdir, trim_metrics, write_atomic


def to_global(batch: dict, mesh) -> dict:
    """This process's numpy batch -> one global jax.Array per field, split over the batch axes."""
    return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), np.asarray(v))
            for k, v in batch.items()}


def eval_step(state: TrainState, batch: dict, loss_fn) -> dict:
    model = state.model()
    model.eval()
    loss, metrics = loss_fn(model, batch, jax.random.key(0))
    return {"loss": loss, **metrics}


def evaluate(state, eval_fn, config, mesh) -> dict:
    source = make_source(config.data.eval, config.data.eval_split, data_dir=config.data.data_dir,
                         **config.data.source_kwargs)
    ds = make_dataset(source, preprocess=config.data.preprocess, global_batch=config.batch_size,
                      seed=config.seed, train=False, **config.data.pp)
    totals, count = {}, 0
    for i, batch in enumerate(ds):
        if config.eval_batches and i >= config.eval_batches:
            break
        if len(next(iter(batch.values()))) * jax.process_count() < config.batch_size:
            break  # a ragged last batch would not split over the mesh
        metrics = jax.device_get(eval_fn(state, to_global(batch, mesh)))
        for k, v in metrics.items():
            totals[k] = totals.get(k, 0.0) + float(v)
        count += 1
    return {k: v / max(count, 1) for k, v in totals.items()}


def checkpoint_arrays(state: TrainState) -> dict:
    return {"params": state.params, "rest": state.rest, "opt_state": state.opt_state, "step": state.step}


def train(config, workdir: str) -> TrainState:
    # Refuses a workdir holding someone else's files or another run; records the config.
    prepare_workdir(config, workdir)

    # Devices, model and optimizer state. Everything is initialised by one jitted program
    # straight into its shardings (from the logical axis names): no host copy of the full
    # model, and one compilation instead of one per parameter.
    mesh = make_mesh(dict(config.mesh))
    tx = make_optimizer(config.optim, config.total_steps)

    def init():
        model = create_model(config.model.name, rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1),
                             **config.model.kwargs)
        return init_train_state(model, tx)

    shardings = state_shardings(jax.eval_shape(init), mesh)
    state = jax.jit(init, out_shardings=shardings)()
    loss_fn = get_loss_fn(config.task.name, **config.task.kwargs)

    # Data: a shuffled, repeating, per-process stream of batches with a resumable state.
    source = make_source(config.data.train, config.data.train_split, data_dir=config.data.data_dir,
                         **config.data.source_kwargs)
    data = iter(make_dataset(source, preprocess=config.data.preprocess, global_batch=config.batch_size,
                             seed=config.seed, train=True, **config.data.pp).to_iter_dataset())

    # Resume from the newest checkpoint of this workdir, if there is one.
    # Each checkpoint is verified on restore; a bad newest one is reported and an older one used.
    checkpoints = Checkpointer(workdir, keep=config.keep_checkpoints, best_metric=config.get("best_metric") or None,
                               best_mode=config.get("best_mode", "max"))
    start = 0
    if restored := checkpoints.restore_latest(checkpoint_arrays(state)):
        start, arrays, data_state = restored
        state = dataclasses.replace(state, **arrays)
        data.set_state(data_state)
        print(f"Resumed from step {start} in {workdir}", flush=True)
    trim_metrics(workdir, start)  # steps after `start` are replayed and logged again

    step_fn = jax.jit(functools.partial(train_step, loss_fn=loss_fn), out_shardings=(shardings, None),
                      donate_argnums=(0,))
    eval_fn = jax.jit(functools.partial(eval_step, loss_fn=loss_fn))
    writer = MetricWriter(workdir, config.total_steps)
    rng = jax.random.key(config.seed)

    with jax.set_mesh(mesh):
        for step in range(start + 1, config.total_steps + 1):
            batch = to_global(next(data), mesh)
            state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
            last = step == config.total_steps
            if step % config.log_every == 0 or last:
                writer.write(step, metrics, examples_per_step=config.batch_size)
            eval_metrics = None
            if config.eval_every and (step % config.eval_every == 0 or last):
                eval_metrics = writer.write(step, evaluate(state, eval_fn, config, mesh), prefix="eval")
            if step % config.checkpoint_every == 0 or last:
                checkpoints.save(step, checkpoint_arrays(state), data.get_state(), metrics=eval_metrics, force=last)
    checkpoints.wait()
    checkpoints.close()

    # The trained weights in flaxzoo's own format, loadable with flaxzoo.load_pretrained. Parameters
    # sharded across hosts are first replicated (a collective: every process takes part).
    params = jax.jit(lambda p: p, out_shardings=NamedSharding(mesh, PartitionSpec()))(state.params)
    if jax.process_index() == 0:
        save_params(nnx.merge(state.graphdef, params, state.rest), os.path.join(workdir, "model.safetensors"),
                    model_name=config.model.name, overwrite=True)  # the run's own output, rewritten as it goes
        write_atomic(os.path.join(workdir, "done.json"), json.dumps({"step": int(state.step), "model": config.model.name}))
    return state
