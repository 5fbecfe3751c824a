"""Time one model at one shape: compile time, median step time, throughput, FLOPs, memory, MFU.

Inference is the model's jitted forward (eval mode). Training (`train=True`) is the training loop's own step
(`flaxzoo.train.step.train_step` with the family's task loss and AdamW), on a synthetic batch, so what is
timed here is what `scripts/train.py` runs. Both are compiled ahead of time (`jit(...).lower(...).compile()`),
which gives the compile time and XLA's cost (FLOPs of one call) and memory analyses of exactly the program
that is then timed. Weights are random: speed does not depend on their values.
"""
from __future__ import annotations

import ast
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import flaxzoo
from flaxzoo import compile_options
from flaxzoo.bench import machine
from flaxzoo.train import perf
from flaxzoo.train.step import init_train_state, train_step
from flaxzoo.train.tasks import get_loss_fn
from flaxzoo.validate import InputError

DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '128x256' -> (128, 256) (height x width)."""
    parts = str(text).lower().split("x")
    try:
        hw = tuple(int(p) for p in parts)
    except ValueError:
        hw = ()
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 1:
        raise InputError(f"--size must be H or HxW in pixels (or a sequence length for a language model), e.g. "
                         f"256 or 128x256; got {text!r}.")
    return hw


def parse_model_kwargs(text: str | None) -> dict:
    """'expert_impl=grouped,dropless=True,capacity=0.5' -> constructor arguments for `create_model`.

    Values are Python literals where they parse as one (True, 0.5, 3, None), strings otherwise."""
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key.isidentifier():
            raise InputError(f"--model-kwargs takes key=value pairs separated by commas, e.g. "
                             f"expert_impl=grouped,dropless=True; {item.strip()!r} is not one.")
        if key in out:
            raise InputError(f"--model-kwargs sets {key} twice; give it once.")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def task_of(name: str) -> str:
    """The kind of input and loss a model takes: 'restore', 'classify' or 'lm'."""
    spec = flaxzoo.get_spec(name)
    task = spec.info.get("task") or {"maxim": "restore", "swin": "classify"}.get(spec.family)
    if task in ("restore", "classify", "lm"):
        return task
    if task in ("denoising", "deblurring", "deraining", "dehazing", "enhancement"):
        return "restore"
    raise InputError(f"{name} is a {task or spec.family} model, which the benchmark has no synthetic input for; "
                     f"it times restoration (MAXIM), image classification (Swin, UoE ViT) and language models.")


def default_size(name: str) -> tuple[int, int]:
    spec = flaxzoo.get_spec(name)
    task = task_of(name)
    if task == "lm":
        return (256, 256)
    if task == "classify" and "input_size" in spec.info:
        return tuple(spec.info["input_size"][:2])
    return (256, 256)


def check_size(name: str, size: tuple[int, int], multiple: tuple[int, int] | None = None) -> None:
    """A restoration model takes sides that are multiples of its size multiple (from the preset if not given)."""
    if multiple is None:
        m = flaxzoo.get_spec(name).info.get("size_multiple")
        if m is None or task_of(name) != "restore":
            return
        multiple = (m, m) if isinstance(m, int) else tuple(m)
    h, w = size
    if h % multiple[0] or w % multiple[1]:
        raise InputError(f"{name} takes images whose sides are multiples of {multiple[0]}x{multiple[1]}; "
                         f"--size {h}x{w} is not: pick e.g. {-(-h // multiple[0]) * multiple[0]}x"
                         f"{-(-w // multiple[1]) * multiple[1]}.")


def build_model(name: str, size: tuple[int, int], dtype: str, rngs: nnx.Rngs | None = None,
                model_kwargs: dict | None = None) -> nnx.Module:
    """The preset, computing in `dtype`; a classifier is built for `size` when that is not its preset size.

    `model_kwargs`: further constructor arguments (`--model-kwargs`); a wrong name or value is create_model's
    one-line message."""
    kwargs = {} if DTYPES[dtype] is None else {"dtype": DTYPES[dtype]}
    spec = flaxzoo.get_spec(name)
    if task_of(name) == "classify" and "img_size" in spec.kwargs and tuple(spec.info["input_size"][:2]) != size:
        kwargs["img_size"] = size
    kwargs.update(model_kwargs or {})
    try:
        return flaxzoo.create_model(name, rngs=rngs or nnx.Rngs(0), **kwargs)
    except (TypeError, ValueError) as e:
        if not model_kwargs:
            raise
        raise InputError(f"--model-kwargs {model_kwargs}: {e}") from None


def synthetic_batch(model: nnx.Module, name: str, batch: int, size: tuple[int, int]) -> dict:
    """A batch the family's task takes (values do not matter for speed): images in [0, 1], labels, tokens."""
    rng = np.random.default_rng(0)
    task = task_of(name)
    if task == "lm":
        vocab = flaxzoo.get_spec(name).kwargs["vocab_size"]
        return {"tokens": jnp.asarray(rng.integers(0, vocab, (batch, size[0] + 1)), jnp.int32)}
    h, w = size
    if task == "restore":
        check_size(name, size, tuple(getattr(model, "size_multiple", (1, 1))))
        image = jnp.asarray(rng.random((batch, h, w, 3)), jnp.float32)
        return {"input": image, "target": image}
    channels = flaxzoo.get_spec(name).kwargs.get("in_chans", 3)
    image = jnp.asarray(rng.random((batch, h, w, channels)), jnp.float32)
    return {"image": image, "label": jnp.asarray(rng.integers(0, model.num_classes, batch), jnp.int32)}


def count_params(model: nnx.Module) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def _memory_analysis(compiled) -> dict:
    try:
        mem = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend has it
        return {}
    if mem is None:
        return {}
    fields = {"argument_size_in_bytes": "arguments_mib", "output_size_in_bytes": "outputs_mib",
              "temp_size_in_bytes": "temporaries_mib", "generated_code_size_in_bytes": "code_mib"}
    return {out: round((getattr(mem, f, 0) or 0) / 2**20, 2) for f, out in fields.items()}


def timed_program(jitted, args: tuple, *, repeats: int, warmup: int, carry_state: bool, rounds: int = 1,
                  between=None, profile_top: int = 0) -> dict:
    """Compile `jitted` for `args` ahead of time, run it `warmup` times, then time `rounds` x `repeats` runs.

    carry_state: the program returns (new_state, ...) and donates its first argument (a train step), so each
    run takes the previous run's state. `between()` runs after each round (the peers' turn, so that both sides
    see the same spells of machine load); with several rounds median_s is the median of the round medians.
    profile_top: after the timing, trace three more runs and keep that many costliest XLA ops (`op_profile.top_ops`).
    """
    t = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - t
    stats = perf.compiled_stats(compiled)

    def call(args):
        out = compiled(*args)
        jax.block_until_ready(out)
        return ((out[0], *args[1:]) if carry_state else args), out

    t = time.perf_counter()
    args, _ = call(args)
    first_s = time.perf_counter() - t
    for _ in range(warmup):
        args, _ = call(args)
    times, round_medians = [], []
    for _ in range(rounds):
        this_round = []
        for _ in range(repeats):
            t = time.perf_counter()
            args, _ = call(args)
            this_round.append(time.perf_counter() - t)
        times += this_round
        round_medians.append(statistics.median(this_round))
        if between is not None:
            between()
    result = {"compile_s": round(compile_s, 3), "first_run_s": round(first_s, 4),
              "median_s": statistics.median(round_medians), "min_s": min(times), "repeats": repeats,
              "warmup": warmup, "memory": _memory_analysis(compiled)}
    if rounds > 1:
        result["round_medians_s"] = round_medians
    if profile_top:
        from flaxzoo.bench import op_profile

        def traced_call():
            nonlocal args
            args, _ = call(args)

        result["profile"] = op_profile.top_ops(compiled, traced_call, runs=3, top=profile_top)
    if "flops" in stats:
        result["flops"] = stats["flops"]
    return result


def _throughput(result: dict, items: int, unit: str, peak: float | None) -> dict:
    result[f"{unit}_per_s"] = items / result["median_s"]
    if "flops" in result:
        achieved = result["flops"] / result["median_s"]
        result["achieved_tflops"] = achieved / 1e12
        if peak:
            result["mfu"] = achieved / peak
    return result


def benchmark(name: str, *, batch: int, size: tuple[int, int] | None = None, train: bool = False,
              dtype: str = "float32", repeats: int = 5, warmup: int = 2, peak: float | None = None,
              model: nnx.Module | None = None, modes: tuple[str, ...] | None = None, rounds: int = 1,
              between=None, model_kwargs: dict | None = None, profile_top: int = 0) -> dict:
    """Figures of one model at one shape: {'params', 'infer': {...}, 'train': {...}} (train only if asked).

    `model`: an already built model to time instead of the preset (e.g. a peer of the same widths);
    `model_kwargs`: constructor arguments for the preset (e.g. {'expert_impl': 'grouped'}).
    `modes`: which programs to time (default: infer, and train if `train`). `rounds`/`between`: see
    `timed_program`; `between(mode)` is called after each round of that mode. `profile_top`: see `timed_program`."""
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    modes = modes or (("infer", "train") if train else ("infer",))
    for value, what in ((batch, "--batch"), (repeats, "--repeats"), (rounds, "--rounds")):
        if int(value) < 1:
            raise InputError(f"{what} must be at least 1, got {value}.")
    size = tuple(size or default_size(name))
    task = task_of(name)
    t = time.perf_counter()
    model = model if model is not None else build_model(name, size, dtype, model_kwargs=model_kwargs)
    build_s = time.perf_counter() - t
    data = synthetic_batch(model, name, batch, size)
    unit = "tokens" if task == "lm" else "images"
    items = batch * size[0] if task == "lm" else batch
    out = {"params": count_params(model), "build_s": round(build_s, 3), "task": task}
    # what the training loop and restoration compile with
    options = {program: compile_options.options_for(model, program) for program in ("infer", "train")}
    if any(options.values()):
        out["compiler_options"] = {program: o for program, o in options.items() if o}

    graphdef, state = nnx.split(model)
    model_input = data["tokens"][:, :-1] if task == "lm" else data["input" if task == "restore" else "image"]

    def forward(state, x):
        m = nnx.merge(graphdef, state)
        m.eval()
        y = m(x)
        while isinstance(y, (list, tuple)):  # MAXIM: outputs[stage][scale]; the restored image is the last
            y = y[-1]
        return y

    def turn(mode):
        return None if between is None else (lambda: between(mode))

    if "infer" in modes:
        infer = timed_program(jax.jit(forward, compiler_options=options["infer"]), (state, model_input),
                              repeats=repeats, warmup=warmup, carry_state=False, rounds=rounds,
                              between=turn("infer"), profile_top=profile_top)
        out["infer"] = _throughput(infer, items, unit, peak)
    if "train" in modes:
        model.train()
        tx = optax.adamw(1e-4)
        train_state = init_train_state(model, tx)
        step = jax.jit(functools.partial(train_step, loss_fn=get_loss_fn(task)), donate_argnums=(0,),
                       compiler_options=options["train"])
        result = timed_program(step, (train_state, data, jax.random.key(0)), repeats=repeats, warmup=warmup,
                               carry_state=True, rounds=rounds, between=turn("train"), profile_top=profile_top)
        out["train"] = _throughput(result, items, unit, peak)
    out["memory"] = machine.device_memory()
    return out
