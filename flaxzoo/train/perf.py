"""What the compiled train step costs: XLA's FLOP count and memory, and the model FLOP utilisation (MFU).

Both analyses are best effort: some backends return None or raise; then the figures are left out.
FLOPs are those of the partitioned program, i.e. per device.
"""
from __future__ import annotations

import jax

# Dense bf16 peak FLOP/s per chip, by a substring of `device.device_kind` (vendor data sheets).
PEAK_FLOPS = (
    ("TPU v6", 918e12), ("TPU v5p", 459e12), ("TPU v5", 197e12), ("TPU v4", 275e12), ("TPU v3", 123e12),
    ("H200", 989e12), ("H100", 989e12), ("A100", 312e12), ("L4", 121e12), ("A10G", 70e12), ("V100", 125e12),
)


def peak_flops(device: jax.Device) -> float | None:
    """Peak bf16 FLOP/s of one accelerator, or None (CPU, or a kind not in the table)."""
    if device.platform == "cpu":
        return None
    kind = device.device_kind
    return next((peak for name, peak in PEAK_FLOPS if name.lower() in kind.lower()), None)


def compiled_stats(compiled) -> dict:
    """{"flops": per-device FLOPs of one call, "memory_gb": argument + output + temporaries} where known."""
    stats = {}
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax returns one dict per program
        if cost and cost.get("flops", -1) > 0:
            stats["flops"] = float(cost["flops"])
    except Exception:  # noqa: BLE001 - unsupported on this backend
        pass
    try:
        mem = compiled.memory_analysis()
        if mem is not None:
            total = sum(getattr(mem, f, 0) or 0 for f in ("argument_size_in_bytes", "output_size_in_bytes",
                                                           "temp_size_in_bytes", "generated_code_size_in_bytes"))
            stats["memory_gb"] = total / 2**30
    except Exception:  # noqa: BLE001
        pass
    return stats


def describe(stats: dict) -> str:
    parts = []
    if "flops" in stats:
        parts.append(f"{stats['flops'] / 1e9:.3g} GFLOP per step per device")
    if "memory_gb" in stats:
        parts.append(f"{stats['memory_gb']:.3g} GiB per device (arguments, outputs, temporaries)")
    return "Compiled train step: " + ("; ".join(parts) if parts else "no cost or memory analysis on this backend")
