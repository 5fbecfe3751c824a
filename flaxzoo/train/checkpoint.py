"""Checkpoints: orbax CheckpointManager behind save/restore of a TrainState plus the data iterator.

Saves are asynchronous (training continues while the write finishes); the newest `keep`
checkpoints are kept. The restore target carries the current shardings, so a run can
resume on a different mesh.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import orbax.checkpoint as ocp

from flaxzoo.train.step import TrainState


def _arrays(state: TrainState) -> dict:
    return {"params": state.params, "rest": state.rest, "opt_state": state.opt_state, "step": state.step}


class Checkpointer:
    def __init__(self, directory: str, *, keep: int = 3):
        self.manager = ocp.CheckpointManager(
            os.path.abspath(os.path.join(directory, "checkpoints")),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState, data_state: dict, *, force: bool = False) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(_arrays(state)), data=ocp.args.JsonSave(data_state))
        self.manager.save(step, args=args, force=force)

    def restore(self, step: int, like: TrainState) -> tuple[TrainState, dict]:
        """Restore into the structure, dtypes and shardings of `like`; returns (state, data iterator state)."""
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(like))
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore())
        out = self.manager.restore(step, args=args)
        return dataclasses.replace(like, **out["state"]), out["data"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
