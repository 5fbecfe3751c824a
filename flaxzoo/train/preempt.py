"""Preemption: SIGTERM (one host) or orbax's multi-host preemption sync point asks the loop to save and stop.

On one process a SIGTERM handler sets a flag the loop reads between steps (a host bool, no device
sync). With several processes each may receive the signal at a different step, so they must agree on
one: JAX's preemption sync manager (started by `jax.distributed.initialize`) does that, and
`orbax.checkpoint.multihost.reached_preemption(step)` says when the agreed step is reached.
"""
from __future__ import annotations

import signal
import threading

import jax
from orbax.checkpoint import multihost


class Preemption:
    def __init__(self):
        self.signalled = False
        self._previous = None
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame):
        self.signalled = True

    def reached(self, step: int) -> bool:
        if jax.process_count() > 1:
            return multihost.reached_preemption(step)
        return self.signalled

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
