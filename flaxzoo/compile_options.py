"""XLA compiler options a model family compiles with: what flaxzoo's own jitted programs (the training loop's
step, eval and preview programs, `Restorer` / `restore_image`, the benchmarks) pass to
`jax.jit(..., compiler_options=...)`.

A model class may name options per backend and program in `xla_options = {"cpu": {"infer": {...}}}`
("infer": forward passes, the training loop's eval and preview included; "train": the training step). Today
only MAXIM does, for inference: on XLA:CPU (jaxlib 0.10) dots, elementwise ops and reductions go to YNNPACK
fusions by default, and for MAXIM's gMLP layers (a LayerNorm, a tanh-GELU and a small per-pixel Dense fused
into one YNNPACK call, its constants passed in as full-size arrays) that is twice as slow as XLA's own loop
fusions: a 32-channel gMLP layer at 256x256 takes 32 ms with YNNPACK fusions and 16 ms without, and the whole
S-3 model 1.2x less (BENCHMARKS.md). Its training step was no faster without them (within the noise of the 2-core machine), and
Swin's and UoE's larger matmuls are faster with them, so those keep XLA's defaults.

The options are compile-time switches of one program, never process-wide flags: a user's own `jax.jit` of the
same module is unaffected (`options_for(model)` gives them to pass). An option the running jaxlib does not know
is left out (checked once per process), so a jaxlib that renames it compiles with its defaults instead of
failing. `FLAXZOO_COMPILER_OPTIONS=default` in the environment turns them all off (for A/B measurements).
"""
from __future__ import annotations

import functools
import os
import warnings

import jax

ENV = "FLAXZOO_COMPILER_OPTIONS"


def options_for(model, program: str = "infer") -> dict[str, str] | None:
    """The compiler options of this model (an instance or its class) for a program ("infer" or "train") on the
    default backend, or None."""
    if program not in ("infer", "train"):
        raise ValueError(f"program must be 'infer' or 'train', got {program!r}.")
    if os.environ.get(ENV, "").strip().lower() == "default":
        return None
    per_backend = getattr(model, "xla_options", None) or {}
    wanted = per_backend.get(jax.default_backend(), {}).get(program, {})
    options = {name: value for name, value in wanted.items() if _known(name, value)}
    return options or None


@functools.cache
def _known(name: str, value: str) -> bool:
    """Whether this jaxlib's compiler takes the option (one tiny compile per option and process)."""
    try:
        jax.jit(lambda x: x + 1).lower(1.0).compile({name: value})
    except Exception as e:  # an unknown option is an error of the compiler, of a type jaxlib does not export
        warnings.warn(f"XLA does not take the compiler option {name}={value!r} ({type(e).__name__}); "
                      f"compiling with its default instead.", stacklevel=3)
        return False
    return True
