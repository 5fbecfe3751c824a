"""What a benchmark ran on: the device, the software, the load, and the peak FLOP/s to compute MFU against.

Accelerators: the bf16 data-sheet peak of `flaxzoo.train.perf.PEAK_FLOPS` (the training loop's table). A CPU has
no such table; `measured_matmul_peak` times a large float32 matmul instead, so a CPU MFU says "of what this
machine's matmul reaches now", which on a shared machine is itself a moving target (recorded with the load).
"""
from __future__ import annotations

import datetime
import os
import platform
import resource
import sys
import time

import jax
import jax.numpy as jnp

from flaxzoo import cpu_memory
from flaxzoo.train import perf


def describe() -> dict:
    device = jax.devices()[0]
    import flax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"platform": device.platform, "device_kind": device.device_kind, "device_count": jax.device_count(),
            "cpu": cpu, "cpu_cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "flax": flax.__version__, "load_avg_1min": round(os.getloadavg()[0], 2),
            "cpu_memory_reused": cpu_memory.applied()}  # flaxzoo/cpu_memory.py; its peers were run the same way


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line(argv) -> str:
    return " ".join(["python scripts/benchmark.py", *argv])


def measured_matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    """float32 FLOP/s of the best of `repeats` jitted (n x n) @ (n x n) matmuls on the default device."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best


def peak_flops(measure_cpu: bool = True) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for the default device; (None, why) when unknown."""
    device = jax.devices()[0]
    peak = perf.peak_flops(device)
    if peak:
        return peak, f"bf16 data-sheet peak of {device.device_kind}"
    if device.platform == "cpu" and measure_cpu:
        return measured_matmul_peak(), "measured float32 1024x1024 matmul on this CPU (same run)"
    return None, f"unknown for {device.device_kind}: MFU not reported"


def device_memory() -> dict:
    """The device allocator's peak (GPU/TPU) or, where there is none (CPU), the process's peak RSS."""
    stats = None
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - not every backend has allocator statistics
        pass
    if stats and "peak_bytes_in_use" in stats:
        return {"device_peak_mib": round(stats["peak_bytes_in_use"] / 2**20, 1)}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"host_peak_rss_mib": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)}
