"""Metric logging: JSONL in the workdir (always), one line of progress to stdout.

Only process 0 writes. No TensorFlow or TensorBoard is needed to train.
"""
from __future__ import annotations

import json
import os
import time

import jax
import numpy as np


class MetricWriter:
    def __init__(self, workdir: str, total_steps: int):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.total = total_steps
        self.active = jax.process_index() == 0
        self._last = (time.perf_counter(), None)

    def write(self, step: int, metrics: dict, *, examples_per_step: int | None = None, prefix: str = "train") -> dict:
        now = time.perf_counter()
        values = {f"{prefix}/{k}": float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}
        last_time, last_step = self._last
        if examples_per_step and last_step is not None and step > last_step:
            rate = (step - last_step) / (now - last_time)
            values["examples_per_sec"] = rate * examples_per_step
            eta = (self.total - step) / rate
            values["eta_min"] = eta / 60
        self._last = (now, step)
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")
            shown = "  ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"[{step}/{self.total}] {shown}", flush=True)
        return values
