"""Verified checkpoints: orbax CheckpointManager plus our own checksums, rotation and fallback.

Layout: `<workdir>/checkpoints/<step>/` is an orbax checkpoint (items `state`: the arrays,
`data`: the data iterator state as JSON). Once orbax has committed it (renamed its temporary
folder), we add `<step>/flaxzoo_checksums.json`: per-array checksums computed on device at save
time, a sha256 of the data state, and the step's metrics. A checkpoint without that file was
never finished. Restore recomputes the checksums of what it read (on device, any mesh) and
compares; a bad newest checkpoint is reported in one line, set aside (moved to
`<workdir>/rejected_checkpoints/`, never deleted) and the next older one is tried.

Saves are asynchronous (training continues while orbax writes); a small thread adds the
checksum file as soon as the commit lands. Rotation is ours, not orbax's, and runs only over
finished checkpoints: the newest `keep` plus the best by `best_metric` survive, so the last
good checkpoint is never deleted, not even while a newer one is still being written.
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import shutil
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from flaxzoo.train.checksum import array_checksums, json_checksum

CHECKSUMS = "flaxzoo_checksums.json"
FORMAT = "flaxzoo-checkpoint-v1"


class CheckpointError(RuntimeError):
    """No checkpoint of the run can be used (each one's problem is in the message)."""


class _Unusable(Exception):
    """One checkpoint is corrupted, truncated or incomplete (the message says which and how)."""


class _DoesNotFit(Exception):
    """A sound checkpoint whose arrays are not the ones this run has (another model or optimizer config)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _all_processes_agree(ok: bool) -> bool:
    """True only if `ok` on every process (so all of them take the same branch)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.min(multihost_utils.process_allgather(np.int32(ok))))


class Checkpointer:
    def __init__(self, directory: str, *, keep: int = 3, best_metric: str | None = None, best_mode: str = "max"):
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive number of checkpoints to keep, got {keep!r}.")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}.")
        self.workdir = os.path.abspath(directory)
        self.directory = os.path.join(self.workdir, "checkpoints")
        self.keep, self.best_metric, self.best_mode = keep, best_metric or None, best_mode
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=None, create=True))
        self._pending: tuple[int, dict, threading.Thread] | None = None
        self._warned_metric = False
        # step -> its checksum record, for every finished checkpoint on disk (rotation works from this).
        self._finished = {step: record for step in self.manager.all_steps() if (record := self._read_record(step))}

    # ----- paths and records -----
    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _read_record(self, step: int) -> dict | None:
        try:
            with open(os.path.join(self._step_dir(step), CHECKSUMS)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("format") == FORMAT else None

    def latest_step(self) -> int | None:
        """The newest step on disk (not yet verified: restore_latest may fall back to an older one)."""
        return self.manager.latest_step()

    # ----- saving -----
    def save(self, step: int, arrays: dict, data_state: dict, *, metrics: dict | None = None,
             force: bool = False) -> bool:
        """Start an asynchronous save of `arrays` (a dict pytree of jax arrays) and the data state."""
        self._finish_pending()
        sums = array_checksums(arrays)
        # A second guard behind the loop's divergence check: never write a checkpoint of NaN/inf weights or
        # optimizer state, so the newest checkpoint on disk stays the last finite one. (Other module state
        # may hold infinities on purpose, e.g. attention masks.)
        non_finite = [p for p, v in sums.items() if not v[4] and not p.startswith("['rest']")]
        if non_finite:
            raise CheckpointError(f"Refusing to save step {step}: {non_finite[0]} holds NaN or inf (and "
                                  f"{len(non_finite) - 1} more arrays); the newest checkpoint is still the last "
                                  f"finite one. Lower the learning rate or check the data, then resume.")
        record = {"format": FORMAT, "step": int(step), "arrays": sums,
                  "data": json_checksum(data_state), "metrics": self._plain_metrics(metrics)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(arrays), data=ocp.args.JsonSave(data_state))
        saved = self.manager.save(step, args=args, force=force)
        if saved:
            writer = threading.Thread(target=self._write_record_when_committed, args=(step, record), daemon=True)
            writer.start()
            self._pending = (int(step), record, writer)
        return saved

    def _plain_metrics(self, metrics: dict | None) -> dict:
        values = {k: float(v) for k, v in jax.device_get(dict(metrics or {})).items()}
        if self.best_metric and values and self.best_metric not in values and not self._warned_metric:
            self._warned_metric = True
            print(f"Warning: best_metric {self.best_metric!r} is not among the metrics saved with the "
                  f"checkpoints ({', '.join(sorted(values))}); no checkpoint is kept as the best.", flush=True)
        return values

    def _write_record_when_committed(self, step: int, record: dict) -> None:
        """Wait for orbax to rename the finished checkpoint into place, then add the checksum file."""
        if jax.process_index() != 0:
            return
        final = self._step_dir(step)
        while not os.path.isdir(final):
            if not self.manager.is_saving_in_progress() and not os.path.isdir(final):
                return  # the save failed; orbax raises it in the main thread
            time.sleep(0.02)
        tmp = os.path.join(final, f".{CHECKSUMS}.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(final, CHECKSUMS))

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        step, record, writer = self._pending
        self._pending = None
        self.manager.wait_until_finished()  # raises a failed save on every process
        writer.join()
        self._finished[step] = record
        self._rotate()

    def _rotate(self) -> None:
        """Delete finished checkpoints beyond the newest `keep`, except the best one."""
        steps = sorted(self._finished)
        keep = set(steps[-self.keep:])
        best = self._best_step()
        if best is not None:
            keep.add(best)
        for step in steps:
            if step not in keep:
                self.manager.delete(step)
                del self._finished[step]

    def _best_step(self) -> int | None:
        if not self.best_metric:
            return None
        scored = [(r["metrics"][self.best_metric], s) for s, r in self._finished.items()
                  if isinstance(r.get("metrics", {}).get(self.best_metric), float)
                  and math.isfinite(r["metrics"][self.best_metric])]
        if not scored:
            return None
        return (max if self.best_mode == "max" else min)(scored)[1]

    def best_step(self) -> int | None:
        """The finished checkpoint with the best `best_metric` so far (None if off or none scored)."""
        self._finish_pending()
        return self._best_step()

    def wait(self) -> None:
        """Block until the last save is on disk, verified and rotated."""
        self._finish_pending()

    def close(self) -> None:
        self._finish_pending()
        self.manager.close()

    # ----- restoring -----
    def restore_latest(self, like: dict) -> tuple[int, dict, dict] | None:
        """(step, arrays, data state) of the newest checkpoint that verifies, restored into the
        structure, dtypes and shardings of `like`; None if there is no checkpoint at all.

        A bad checkpoint is reported in one line and moved aside; if none verifies, raise
        CheckpointError and leave every file where it is."""
        self._finish_pending()
        self.manager.reload()
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            self._remove_unfinished_saves()
            return None
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        problems = []
        for step in steps:
            try:
                arrays, data_state = self._restore_verified(step, like, target)
            except _DoesNotFit as misfit:  # not damage: every older checkpoint would be refused the same way
                raise CheckpointError(
                    f"Checkpoint {step} in {self.directory} does not fit this run: {misfit}. The config changed in a "
                    f"way that changes the saved state (the model, or optimizer options such as optim.clip_norm); "
                    f"resume with the config it was saved with (config.json, or the newest config.resume-*.json), "
                    f"or train this config in a new workdir. Nothing was changed or deleted.") from None
            except _Unusable as bad:
                problems.append((step, str(bad)))
                continue
            self._set_aside(problems, resumed_from=step)
            self._remove_unfinished_saves()
            return step, arrays, data_state
        listing = "; ".join(f"step {s}: {why}" for s, why in problems)
        raise CheckpointError(
            f"None of the {len(steps)} checkpoints in {self.directory} can be used ({listing}). Nothing was "
            f"changed or deleted. Restore them from a backup, or train from scratch in a new workdir.")

    def _restore_verified(self, step: int, like: dict, target: dict) -> tuple[dict, dict]:
        record = self._read_record(step)
        if record is None:
            raise _Unusable(f"no valid {CHECKSUMS} (the save did not finish, or the file was removed)")
        expected = record["arrays"]
        saved, wanted = {p: v[:2] for p, v in expected.items()}, array_checksums_layout(like)
        if saved != wanted:
            raise _DoesNotFit(_layout_difference(saved, wanted))
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore())
        error = None
        asyncio_log = logging.getLogger("asyncio")  # orbax's failed read tasks would each dump a traceback
        level, asyncio_log.level = asyncio_log.level, logging.CRITICAL
        try:
            out = self.manager.restore(step, args=args)
        except Exception as e:  # noqa: BLE001 - any read failure means this checkpoint is unusable
            error = e
        finally:
            asyncio_log.setLevel(level)
        if not _all_processes_agree(error is None):
            raise _Unusable(f"cannot be read ({_first_line(error) if error else 'on another process'})")
        arrays, data_state = out["state"], out["data"]
        got = array_checksums(arrays)
        wrong = [p for p in expected if got.get(p) != expected[p]]
        if wrong:
            raise _Unusable(f"checksum mismatch in {len(wrong)} array(s), first {wrong[0]}")
        if json_checksum(data_state) != record["data"]:
            raise _Unusable("checksum mismatch in the data iterator state")
        return arrays, data_state

    def _remove_unfinished_saves(self) -> None:
        """Delete orbax's temporary folders of saves cut short by a kill: never a checkpoint, only
        half of one (done once a good checkpoint or none at all is found, so a failed restore leaves them)."""
        if jax.process_index() == 0:
            for path in glob.glob(os.path.join(glob.escape(self.directory), "*.orbax-checkpoint-tmp*")):
                shutil.rmtree(path, ignore_errors=True)

    def _set_aside(self, problems: list[tuple[int, str]], *, resumed_from: int) -> None:
        """Move the bad checkpoints newer than the one restored out of the way (kept for inspection,
        never deleted) so the resumed run can save those steps again; one line each."""
        if not problems:
            return
        if jax.process_index() == 0:
            aside = os.path.join(self.workdir, "rejected_checkpoints")
            os.makedirs(aside, exist_ok=True)
            for step, why in problems:
                dest, n = os.path.join(aside, str(step)), 1
                while os.path.exists(dest):
                    n += 1
                    dest = os.path.join(aside, f"{step}.{n}")
                shutil.move(self._step_dir(step), dest)
                print(f"Checkpoint {step} in {self.directory} is unusable: {why}; moved it to {dest} and resumed "
                      f"from step {resumed_from}.", flush=True)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("flaxzoo_checkpoint_set_aside")
        self.manager.reload()
        for step, _ in problems:
            self._finished.pop(step, None)


def array_checksums_layout(tree) -> dict[str, list]:
    """{leaf path: [shape, dtype]} of arrays or ShapeDtypeStructs (no device work)."""
    return {jax.tree_util.keystr(path): [list(leaf.shape), str(leaf.dtype)]
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _layout_difference(saved: dict, wanted: dict) -> str:
    missing, extra = sorted(set(wanted) - set(saved)), sorted(set(saved) - set(wanted))
    if missing or extra:
        return (f"{len(extra)} of its arrays are not in this run (e.g. {', '.join(extra[:2])}) and {len(missing)} of "
                f"this run's are not in it (e.g. {', '.join(missing[:2])})")
    changed = next(p for p in wanted if saved[p] != wanted[p])
    return f"array {changed} is {saved[changed]} in the checkpoint but {wanted[changed]} in this run"
