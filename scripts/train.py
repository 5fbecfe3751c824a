"""Train a model from a config file.

    python scripts/train.py --config configs/swin/textures.py --workdir runs/swin_textures
    python scripts/train.py --config configs/maxim/denoise.py --workdir runs/maxim --config.total_steps=500

Any config field can be overridden with --config.<field>=<value>; a misspelt field is an
error. Re-running with the same workdir resumes from its newest checkpoint. On a multi-host
cluster (TPU pod, several GPU hosts) add --distributed on every host.
"""
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from flaxzoo.train.loop import TrainingDiverged, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/<family>/<task>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the final weights.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it renames at INFO
    if _DISTRIBUTED.value:
        jax.distributed.initialize()
    try:
        train(_CONFIG.value, _WORKDIR.value)
    except TrainingDiverged as e:  # one line, no traceback; the workdir keeps its last finite checkpoint
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
