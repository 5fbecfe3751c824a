"""Train a model from a config file.

    flaxzoo-train --config configs/swin/textures.py --workdir runs/swin_textures
    flaxzoo-train --config configs/maxim/denoise.py --workdir runs/maxim --config.total_steps=500
    flaxzoo-train --config configs/swin/textures.py --config.model.kwargs.drop_path_rate=0.2 --workdir runs/dp

(`python scripts/train.py ...` is the same program.) Any config field can be overridden with
--config.<field>=<value>; a misspelt field is an error. model.kwargs takes any argument of the
model's constructor, even one the config does not set. `--config FILE --help` lists the config's
fields and their values. Re-running with the same workdir resumes from its newest checkpoint. On a
multi-host cluster (TPU pod, several GPU hosts) add --distributed on every host.
"""
from __future__ import annotations

import os
import sys

from flaxzoo import cli
from flaxzoo.train.config_check import check_config, constructor_parameters
from flaxzoo.train.config_file import apply_override, flat_fields, load_config, split_overrides


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, metavar="FILE[:ARG]",
                   help="config file, configs/<family>/<task>.py; ':ARG' is passed to its get_config(arg)")
    p.add_argument("--workdir", required=True, help="folder for checkpoints, metrics and the final weights")
    p.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() (multi-host runs)")
    return p


def config_help(spec: str | None) -> str:
    """The epilog of --help: every config field with its value (the file's, or the shared defaults)."""
    if spec:
        config, title = load_config(spec), f"Fields of {spec}"
    else:
        from flaxzoo.train.defaults import base_config

        config, title = base_config(), "Config fields (shared defaults; --config FILE --help shows a file's values)"
    lines = [f"{title}, set any with --config.<field>=<value>:"]
    lines += [f"  {key} = {_shown(value)}" for key, value in flat_fields(config)]
    if config.model.name:
        import flaxzoo

        preset = flaxzoo.get_spec(config.model.name).kwargs
        params = constructor_parameters(config.model.name)
        lines.append(f"model.kwargs also takes any argument of {config.model.name}'s constructor (the preset's value):")
        lines += [f"  model.kwargs.{k} (default {preset.get(k, p.default)!r})" for k, p in params.items()
                  if k not in config.model.kwargs]
    return "\n".join(lines)


def _shown(value) -> str:
    return repr(value.to_dict()) if hasattr(value, "to_dict") else repr(value)


def check_workdir(workdir: str) -> None:
    """The workdir is a folder (new or an earlier run's) we can create and write; nothing is created here."""
    if not workdir:
        raise cli.UsageError("--workdir is empty: pass a folder for the run, e.g. --workdir runs/my_run.")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise cli.UsageError(f"--workdir {workdir} is a file, not a folder: pass a new folder or an earlier "
                             f"run's workdir.")
    existing = os.path.abspath(workdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise cli.UsageError(f"--workdir {workdir}: {existing} is a file, so the folder cannot be created; "
                             f"pass another --workdir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise cli.UsageError(f"--workdir {workdir}: {existing} is not writable; pass a folder you can write to.")


def _value_after(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def run(argv: list[str]) -> int:
    argv, overrides = split_overrides(argv)
    parser = build_parser()
    if "-h" in argv or "--help" in argv:  # help needs no workdir, and runs nothing
        parser.epilog = config_help(_value_after(argv, "--config"))
        parser.print_help()
        return cli.EXIT_OK
    args = parser.parse_args(argv)

    # Everything is checked before anything is created, written or built.
    config = load_config(args.config)
    for key, text in overrides:
        apply_override(config, key, text)
    config.lock()  # from here on a misspelt field is an error, in our code too
    check_workdir(args.workdir)

    import jax
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every file it renames at INFO
    if args.distributed:
        jax.distributed.initialize()  # before anything asks for the devices
    from flaxzoo import cpu_memory

    cpu_memory.reuse_step_memory()  # before the devices are asked for (see flaxzoo/cpu_memory.py)
    check_config(config)

    from flaxzoo.train import loop

    print(f"Training {config.model.name} on {config.data.train} for {config.total_steps} steps in "
          f"{args.workdir} ({jax.device_count()} {jax.devices()[0].platform} devices); building the model and "
          f"compiling the train step first, which takes a while.", flush=True)
    from flaxzoo.train.checkpoint import CheckpointError
    from flaxzoo.train.workdir import WorkdirError

    try:
        loop.train(config, args.workdir)
    except WorkdirError as e:  # someone else's files or another run in the workdir: nothing was touched
        return cli.print_error(cli.one_line(e))
    except (loop.TrainingDiverged, CheckpointError) as e:
        # The work ran and failed (exit 1): a diverged run keeps its last finite checkpoint; a workdir whose
        # checkpoints are all unusable is left as it was.
        print(f"error: {cli.one_line(e)}", file=sys.stderr, flush=True)
        return cli.EXIT_FAILED
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
