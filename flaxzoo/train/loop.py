"""The training loop. Read it top to bottom: config -> mesh -> model -> data -> steps -> weights.

One loop for every family and task. The config names a registered model, a task (loss and
metrics), a dataset and an optimizer; `flaxzoo.train.sharding` turns the model's logical
axis names into shardings over the mesh, so data/FSDP/tensor/expert parallelism are config
switches. Runs resume from the newest checkpoint in the workdir, data iterator included.
The mechanisms live in small files beside this one: step.py (accumulation, divergence guard,
EMA), optim.py, evaluate.py, metrics.py (+ tensorboard.py), perf.py, preempt.py, checkpoint.py.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from flaxzoo import compile_options, cpu_memory
from flaxzoo.data.pipeline import make_dataset, make_source
from flaxzoo.models.convert.common import save_params
from flaxzoo.models.registry import create_model, get_spec
from flaxzoo.train import config_check, perf
from flaxzoo.train.checkpoint import Checkpointer
from flaxzoo.train.evaluate import eval_step, evaluate, pad_batch, preview_step
from flaxzoo.train.metrics import MetricWriter
from flaxzoo.train.optim import make_optimizer, make_schedule
from flaxzoo.train.preempt import Preemption
from flaxzoo.train.sharding import batch_sharding, make_mesh, state_shardings
from flaxzoo.train.step import (TrainState, describe_nonfinite, init_train_state, state_arrays, state_from_arrays,
                                train_step)
from flaxzoo.train.tasks import get_loss_fn, get_preview_fn
from flaxzoo.train.workdir import prepare as prepare_workdir, trim_metrics, write_atomic

# The model's `dtype` constructor argument per config.compute_dtype (None: the models' float32 default).
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


class TrainingDiverged(RuntimeError):
    """The loss, the gradient norm or the parameters became non-finite; nothing after the last good checkpoint
    was saved."""


def to_global(batch: dict, mesh) -> dict:
    """This process's numpy batch -> one global jax.Array per field, split over the batch axes."""
    return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), np.asarray(v))
            for k, v in batch.items()}


def check_finite(state: TrainState) -> None:
    """Read the step's divergence flag (a device->host copy: done only at log, eval and save points)."""
    bad_step = int(state.bad_step)
    if bad_step:
        what = describe_nonfinite(int(state.bad_what))
        raise TrainingDiverged(
            f"Training diverged at step {bad_step}: the {what} became non-finite (NaN or inf). Nothing was saved "
            f"after it (a non-finite loss or gradient is never applied to the weights); the newest checkpoint in "
            f"the workdir is the last finite one. Lower optim.lr, enable optim.clip_norm, or check the data, then "
            f"rerun to resume.")


def train(config, workdir: str, *, devices=None) -> TrainState:
    # On a CPU, each step reuses the last one's memory instead of faulting 1-2 GB in again (flaxzoo/cpu_memory.py);
    # a no-op when jax has already started (the CLI calls it first) or on an accelerator.
    cpu_memory.reuse_step_memory()
    # A bad value is one message now, not a crash (or a no-op run) later.
    config_check.check_config(config, num_devices=len(devices) if devices else None)
    # Refuses a workdir holding someone else's files or another run; records the config (never rewrites it).
    prepare_workdir(config, workdir)

    # Devices, model and optimizer state. Everything is initialised by one jitted program
    # straight into its shardings (from the logical axis names): no host copy of the full
    # model, and one compilation instead of one per parameter. Parameters and optimizer state
    # are float32; `compute_dtype` is the dtype the model computes in.
    mesh = make_mesh(dict(config.mesh), devices)
    tx = make_optimizer(config.optim, config.total_steps)
    schedule = make_schedule(config.optim, config.total_steps)  # only to log the learning rate
    use_ema = config.ema_decay > 0
    dtype_kwarg = {"dtype": COMPUTE_DTYPES[config.compute_dtype]} if config.compute_dtype != "float32" else {}

    def init():
        model = create_model(config.model.name, rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1),
                             **config.model.kwargs, **dtype_kwarg)
        return init_train_state(model, tx, ema=use_ema)

    shardings = state_shardings(jax.eval_shape(init), mesh)
    state = jax.jit(init, out_shardings=shardings)()
    loss_fn = get_loss_fn(config.task.name, **config.task.kwargs)

    # Data: a shuffled, repeating, per-process stream of batches with a resumable state; the eval
    # split is built once and read whole at every eval (its last batch padded and masked).
    source = make_source(config.data.train, config.data.train_split, data_dir=config.data.data_dir,
                         **config.data.source_kwargs)
    data = iter(make_dataset(source, preprocess=config.data.preprocess, global_batch=config.batch_size,
                             seed=config.seed, train=True, **config.data.pp).to_iter_dataset())
    eval_data = None
    if config.eval_every:
        eval_source = make_source(config.data.eval, config.data.eval_split, data_dir=config.data.data_dir,
                                  **config.data.source_kwargs)
        eval_data = make_dataset(eval_source, preprocess=config.data.preprocess, global_batch=config.batch_size,
                                 seed=config.seed, train=False, **config.data.pp)

    # Resume from the newest checkpoint of this workdir, if there is one.
    checkpoints = Checkpointer(workdir, keep=config.keep_checkpoints, best_metric=config.best_metric or None,
                               best_mode=config.best_mode)
    start = 0
    restored = checkpoints.restore_latest(state_arrays(state))
    if restored is not None:
        start, arrays, data_state = restored
        state = state_from_arrays(state, arrays)
        data.set_state(data_state)
        print(f"Resumed from step {start} in {workdir}", flush=True)
    trim_metrics(workdir, start)  # steps after `start` are replayed and logged again

    # The model family's XLA options (e.g. MAXIM's forward on a CPU: no YNNPACK fusions), per program.
    family = get_spec(config.model.name).builder
    step_jit = jax.jit(functools.partial(train_step, loss_fn=loss_fn, grad_accum_steps=config.grad_accum_steps,
                                         ema_decay=config.ema_decay),
                       out_shardings=(shardings, None), donate_argnums=(0,),
                       compiler_options=compile_options.options_for(family, "train"))
    forward_options = compile_options.options_for(family, "infer")
    eval_fn = jax.jit(lambda state, batch: eval_step(state, batch, loss_fn, use_ema=use_ema),
                      compiler_options=forward_options)
    preview = get_preview_fn(config.task.name)
    preview_fn = preview and jax.jit(lambda state, batch: preview_step(state, batch, preview, use_ema=use_ema),
                                     compiler_options=forward_options)
    local_batch = config.batch_size // jax.process_count()
    writer = MetricWriter(workdir, config.total_steps, start_step=start,
                          peak_flops=perf.peak_flops(mesh.devices.flat[0]))
    preemption = Preemption()
    rng = jax.random.key(config.seed)
    preempted = False

    try:
        with jax.set_mesh(mesh):
            for step in range(start + 1, config.total_steps + 1):
                batch = to_global(next(data), mesh)
                if step == start + 1:  # compile once, ahead of time, to report what a step costs
                    step_fn = step_jit.lower(state, batch, rng).compile()
                    stats = perf.compiled_stats(step_fn)
                    writer.compiled(stats, perf.describe(stats))
                state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
                writer.progress(step)
                last = step == config.total_steps
                if step % config.log_every == 0 or last:
                    check_finite(state)
                    writer.write(step, metrics, examples_per_step=config.batch_size,
                                 extra={"train/lr": float(schedule(step - 1))})
                eval_metrics = None
                if eval_data is not None and (step % config.eval_every == 0 or last):
                    check_finite(state)
                    eval_metrics = evaluate(functools.partial(eval_fn, state), eval_data,
                                            functools.partial(to_global, mesh=mesh), local_batch=local_batch,
                                            max_batches=config.eval_batches)
                    eval_metrics = writer.write(step, eval_metrics, prefix="eval")
                    if preview_fn is not None:
                        first = to_global(pad_batch(next(iter(eval_data)), local_batch), mesh)
                        writer.images(step, "eval/input_output_target", preview_fn(state, first))
                preempted = preemption.reached(step)
                if step % config.checkpoint_every == 0 or last or preempted:
                    check_finite(state)  # a non-finite state is never saved
                    checkpoints.save(step, state_arrays(state), data.get_state(), metrics=eval_metrics,
                                     force=last or preempted)
                if preempted:
                    checkpoints.wait()
                    writer.print(f"Preempted: saved a checkpoint at step {step} in {workdir}; rerun the same "
                                 f"command to resume from it.")
                    break
    finally:  # also when the run diverges: earlier saves finish, the SIGTERM handler is restored
        preemption.close()
        writer.close()
        checkpoints.wait()
        checkpoints.close()
    if preempted:
        return state

    # The trained weights in flaxzoo's own format, loadable with flaxzoo.load_pretrained: the EMA weights
    # when on (the raw ones beside them). Parameters sharded across hosts are first replicated (a
    # collective: every process takes part).
    check_finite(state)
    replicate = jax.jit(lambda p: p, out_shardings=NamedSharding(mesh, PartitionSpec()))
    outputs = {"model.safetensors": state.ema if use_ema else state.params}
    if use_ema:
        outputs["model_raw.safetensors"] = state.params
    outputs = {name: replicate(params) for name, params in outputs.items()}
    if jax.process_index() == 0:
        for name, params in outputs.items():
            save_params(nnx.merge(state.graphdef, params, state.rest), os.path.join(workdir, name),
                        model_name=config.model.name, model_kwargs=dict(config.model.kwargs),
                        overwrite=True)  # the run's own output, rewritten as it goes
        write_atomic(os.path.join(workdir, "done.json"), json.dumps({
            "step": int(state.step), "model": config.model.name,
            "weights": f"ema (decay {config.ema_decay})" if use_ema else "raw", "compute_dtype": config.compute_dtype}))
    return state
