"""Metric logging: `metrics.jsonl` in the workdir (always), TensorBoard events in `workdir/tb/`, and on a
terminal a progress bar with throughput and ETA (elsewhere, e.g. a log file, one plain line per log step).

Only process 0 writes. No TensorFlow is needed. `metrics.jsonl` rows are {"step": n, "<prefix>/<name>":
value, ...}; after a resume from step s the loop drops the rows of later steps first
(`workdir.trim_metrics`), so the replayed steps replace their rows instead of appearing twice.
"""
from __future__ import annotations

import json
import os
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from flaxzoo.train.tensorboard import TensorBoard


class MetricWriter:
    def __init__(self, workdir: str, total_steps: int, *, start_step: int = 0, peak_flops: float | None = None):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.total = total_steps
        self.active = jax.process_index() == 0
        self.flops_per_step = None  # per device, set by `compiled`
        self.peak_flops = peak_flops
        self._last = (time.perf_counter(), start_step)
        self.tb = TensorBoard(workdir, active=self.active)
        self.bar = None
        if self.active:
            # A bar only on a terminal; piped into a log file it would bury the metric lines.
            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                            disable=not sys.stdout.isatty(), file=sys.stdout)

    def print(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def compiled(self, stats: dict, describe: str) -> None:
        """The step is compiled: note its FLOPs (for MFU), say what it costs, start timing from here."""
        self.flops_per_step = stats.get("flops")
        self.print(describe)
        self._last = (time.perf_counter(), self._last[1])

    def progress(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def write(self, step: int, metrics: dict, *, examples_per_step: int | None = None, prefix: str = "train",
              extra: dict | None = None) -> dict:
        now = time.perf_counter()
        values = {f"{prefix}/{k}": float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}
        values.update(extra or {})
        last_time, last_step = self._last
        if examples_per_step and step > last_step:
            steps_per_sec = (step - last_step) / (now - last_time)
            values["steps_per_sec"] = steps_per_sec
            values["examples_per_sec"] = steps_per_sec * examples_per_step
            values["eta_min"] = (self.total - step) / steps_per_sec / 60
            if self.flops_per_step and self.peak_flops:
                values["mfu"] = self.flops_per_step * steps_per_sec / self.peak_flops
            self._last = (now, step)
        elif step == last_step:  # an eval right after a train log: its time is not training time
            self._last = (time.perf_counter(), last_step)
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")
            self.tb.scalars(step, values)
            if self.bar is not None and not self.bar.disable and "examples_per_sec" in values:
                self.bar.set_postfix_str(f"{values['examples_per_sec']:.3g} ex/s", refresh=False)
            shown = "  ".join(f"{k}={v:.4g}" for k, v in values.items())
            self.print(f"[{step}/{self.total}] {shown}")
        return values

    def images(self, step: int, name: str, images) -> None:
        if self.active:
            self.tb.images(step, name, jax.device_get(images))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.tb.close()
