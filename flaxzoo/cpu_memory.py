"""Keep a CPU program's working memory from one run to the next, instead of faulting it in again every step.

XLA:CPU gives each run of a compiled program one buffer for all its temporaries (1.65 GB for the Swin-T
training step at batch 8) and frees it when the run ends. glibc serves a block that size with a fresh `mmap`
and returns it with `munmap`, so every step touches 400k new pages: on the 2-core machine of BENCHMARKS.md
that was 21% of the step's CPU time in the kernel's page-fault path, and the step took 1.50 s instead of
1.18 s. Two settings make the buffer come back from the heap each run:

- glibc's `mallopt`: no mmap for large blocks (`M_MMAP_MAX` 0) and no trimming of the heap's top
  (`M_TRIM_THRESHOLD` at its maximum), so a freed block stays mapped for the next run;
- jax's `jax_cpu_enable_async_dispatch=False`: programs run on the calling (main) thread, whose heap is
  glibc's main arena. XLA's own threads get other arenas, which cannot hold a block over 64 MiB and use mmap
  whatever the settings say.

The cost: memory freed by the process is kept for reuse rather than returned to the system (its resident size
stays at its peak), and the Python thread waits for each CPU program instead of running ahead (the training
loop reads its metrics every `log_every` steps anyway). `flaxzoo.train.train` and `flaxzoo-benchmark` apply
it on a CPU; set `FLAXZOO_CPU_MEMORY=default` to leave both as they are. The rest of this module imports
nothing of flaxzoo, and jax only when asked, so the benchmark's peers (timm in a torch venv) can load it by path.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

ENV = "FLAXZOO_CPU_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_INT_MAX = 2**31 - 1
_state = {"heap": False, "dispatch": False}


def enabled() -> bool:
    """Whether the environment lets flaxzoo change these settings (FLAXZOO_CPU_MEMORY is not 'default')."""
    return os.environ.get(ENV, "").strip().lower() != "default"


def _possible() -> bool:
    """Allowed by the environment, and glibc's malloc is the one to set (Linux with glibc)."""
    return enabled() and sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_glibc_heap() -> bool:
    """Serve large blocks from glibc's heap and keep freed memory mapped (see the module docstring). True when
    set (Linux with glibc, and the environment allows it)."""
    if _state["heap"]:
        return True
    if not _possible():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    except (OSError, AttributeError):
        return False
    _state["heap"] = ok
    return ok


def _backends_started() -> bool:
    from jax._src import xla_bridge

    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else bool(getattr(xla_bridge, "_backends", None))


def reuse_step_memory() -> bool:
    """Make each run of a compiled CPU program reuse the previous run's memory. Call it before anything starts
    jax's backends (before the first array is made): after that jax keeps its dispatch mode, and this returns
    False having changed nothing. Also False, changing nothing, off Linux/glibc or with FLAXZOO_CPU_MEMORY=default;
    and False when the default backend is not the CPU (the CPU client, unused for the steps, then dispatches
    synchronously; glibc is left alone). The results of every program are the same either way; only time and memory
    reuse differ."""
    if applied():
        return True
    if not _possible():
        return False
    import jax

    if _backends_started():
        return False
    jax.config.update("jax_cpu_enable_async_dispatch", False)  # only the CPU client reads it
    _state["dispatch"] = True
    if jax.default_backend() != "cpu":  # an accelerator runs the steps: leave the host's malloc alone
        return False
    return keep_glibc_heap()


def applied() -> bool:
    """Whether this process runs with both settings (recorded in benchmark JSON)."""
    return _state["heap"] and _state["dispatch"]
