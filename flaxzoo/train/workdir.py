"""Workdir safety: a run only ever writes into an empty folder or into its own earlier run.

`flaxzoo_run.json` marks a folder as a flaxzoo run and names what it trains (model, task and a
hash of their config). `prepare(config, workdir)` runs before anything is built and decides,
by `config.resume`:

  auto     (default) resume the run in `workdir` if it trains the same model and task; start a
           new run if the folder is missing or empty; refuse anything else.
  new      start a new run; the folder must be missing or empty.
  require  resume; refuse if the folder holds no checkpoint of this run (for restarted jobs that
           must never silently start over).
  force    resume even though the model or task config changed (e.g. a new drop-path rate for
           the rest of the run); the change is recorded and printed. The checkpoint must still
           fit the model.

A folder with files but no marker (someone's data, another tool's run) is always refused. The
first run's `config.json` is never rewritten: a changed config on resume goes to
`config.resume-<n>.json` beside it (n = 1, 2, ...), and the differences are printed. Files are written to a
fresh temporary name in the same folder and renamed into place (`write_atomic`), so a crash
never leaves half a file and a rename never replaces a file flaxzoo did not write.
"""
from __future__ import annotations

import hashlib
import json
import os

import jax

from flaxzoo.files import write_atomic  # noqa: F401  (re-exported: the loop and tests use it from here)

MARKER = "flaxzoo_run.json"
MODES = ("auto", "new", "require", "force")


class WorkdirError(RuntimeError):
    """The workdir cannot be used for this run (the message says why and what to do)."""


def _plain(config) -> dict:
    return json.loads(config.to_json_best_effort())


def _identity(config: dict) -> dict:
    """What makes two configs the same run: the model and the task (the rest may change on resume)."""
    return {"model": config.get("model"), "task": config.get("task")}


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _flatten(value, prefix="") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def config_diff(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for each leaf that differs (dotted keys, sorted)."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, missing), b.get(key, missing)
        if x != y:
            lines.append(f"{key}: {'(unset)' if x is missing else json.dumps(x)} -> "
                         f"{'(unset)' if y is missing else json.dumps(y)}")
    return lines


def _checkpoint_steps(workdir: str) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit() and os.path.isdir(os.path.join(folder, n)))


def _recorded_configs(workdir: str) -> list[str]:
    """config.json, then config.resume-1.json, config.resume-2.json, ... (one per changed restart)."""
    numbers = sorted(int(n[len("config.resume-"):-len(".json")]) for n in os.listdir(workdir)
                     if n.startswith("config.resume-") and n.endswith(".json")
                     and n[len("config.resume-"):-len(".json")].isdigit())
    return ["config.json"] + [f"config.resume-{n}.json" for n in numbers]


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise WorkdirError(f"Cannot read the {what} {path} ({e}); the workdir looks damaged. Use a new --workdir "
                           f"(nothing in this one was changed).") from None
    if not isinstance(value, dict):
        raise WorkdirError(f"The {what} {path} is not a JSON object; use a new --workdir.")
    return value


def _decide(config: dict, workdir: str, mode: str) -> str:
    """'new' or 'resume', or raise WorkdirError. Reads only; writes nothing."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f"The workdir {workdir} is a file, not a folder; pass a folder path with --workdir.")
    entries = sorted(os.listdir(workdir)) if os.path.isdir(workdir) else []
    if not entries:
        if mode == "require":
            raise WorkdirError(f"config.resume='require' but {workdir} holds no run to resume; check the path, or "
                               f"use --config.resume=auto to start a new run there.")
        return "new"
    if MARKER not in entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise WorkdirError(f"The workdir {workdir} is not empty ({shown}) and is not a flaxzoo run (no {MARKER}); "
                           f"flaxzoo will not write among files it did not make. Use a new or empty --workdir.")
    if mode == "new":
        raise WorkdirError(f"config.resume='new' but {workdir} already holds a flaxzoo run; use a new --workdir, "
                           f"or --config.resume=auto to continue that run.")
    marker = _read_json(os.path.join(workdir, MARKER), "run marker")
    if marker.get("identity") != _hash(_identity(config)) and mode != "force":
        earlier = os.path.join(workdir, _recorded_configs(workdir)[-1])  # the run's config as of now
        changes = config_diff(_identity(_read_json(earlier, "run config")), _identity(config)) \
            if os.path.exists(earlier) else []
        raise WorkdirError(
            f"The workdir {workdir} holds a run of model {marker.get('model')!r} (task {marker.get('task')!r}) with "
            f"another model or task config ({'; '.join(changes[:4]) or 'differs'}). Use a new --workdir, or "
            f"--config.resume=force to continue that run with the changed config.")
    if mode == "require" and not _checkpoint_steps(workdir):
        raise WorkdirError(f"config.resume='require' but the run in {workdir} has no checkpoint yet; use "
                           f"--config.resume=auto to start it from scratch.")
    return "resume"


def _marker(plain: dict) -> str:
    return json.dumps({"format": "flaxzoo-run-v1", "model": (plain.get("model") or {}).get("name"),
                       "task": (plain.get("task") or {}).get("name"), "identity": _hash(_identity(plain))}, indent=2)


def prepare(config, workdir: str) -> str:
    """Check `workdir` against `config.resume` and record the config; returns 'new' or 'resume'.

    Call on every process before anything is written; only process 0 writes."""
    mode = config.get("resume", "auto")
    if mode not in MODES:
        raise WorkdirError(f"config.resume must be one of {', '.join(MODES)}; got {mode!r}.")
    plain = _plain(config)
    decision = _decide(plain, workdir, mode)
    if jax.process_count() > 1:  # every process has looked before process 0 writes anything
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("flaxzoo_workdir_checked")
    if jax.process_index() == 0:
        text = json.dumps(plain, indent=2)
        if decision == "new":
            os.makedirs(workdir, exist_ok=True)
            # The marker first: a folder with it is ours, so a run killed right here can still resume.
            write_atomic(os.path.join(workdir, MARKER), _marker(plain))
            write_atomic(os.path.join(workdir, "config.json"), text)
        elif not os.path.exists(os.path.join(workdir, "config.json")):  # killed between the two writes above
            write_atomic(os.path.join(workdir, "config.json"), text)
        else:
            _record_resumed_config(workdir, plain, text)
    return decision


def _record_resumed_config(workdir: str, plain: dict, text: str) -> None:
    latest = _read_json(os.path.join(workdir, _recorded_configs(workdir)[-1]), "run config")
    changes = config_diff({k: v for k, v in latest.items() if k != "resume"},
                          {k: v for k, v in plain.items() if k != "resume"})
    if not changes:
        return
    # Numbered, not named after a step: which checkpoint the run resumes from is known only after
    # it has been verified.
    n = len(_recorded_configs(workdir))
    while os.path.exists(os.path.join(workdir, f"config.resume-{n}.json")):
        n += 1
    name = f"config.resume-{n}.json"
    write_atomic(os.path.join(workdir, name), text)
    print(f"Resuming {workdir} with a changed config (recorded in {name}; config.json keeps the first):\n  "
          + "\n  ".join(changes), flush=True)
    if _identity(latest) != _identity(plain):
        write_atomic(os.path.join(workdir, MARKER), _marker(plain))  # the run now trains the changed config


def trim_metrics(workdir: str, step: int) -> None:
    """Drop metrics.jsonl rows after `step` (a resumed run replays those steps and logs them again)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if jax.process_index() != 0 or not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = []
    for line in lines:
        try:
            row_step = json.loads(line).get("step")
        except ValueError:
            continue  # a row cut short by a kill
        if isinstance(row_step, int) and row_step <= step:
            kept.append(line)
    if len(kept) != len(lines):
        write_atomic(path, "".join(line + "\n" for line in kept))
