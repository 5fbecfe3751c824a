"""One process of a two-process training run on CPU (started by test_train_loop.py).

    python tests/multihost_worker.py PROCESS_ID PORT WORKDIR
"""
import os
import sys

os.environ["JAX_NUM_CPU_DEVICES"] = "4"  # 2 processes x 4 devices = the 8 devices of the one-process test
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.pop("XLA_FLAGS", None)

import jax  # noqa: E402

process_id, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_train_loop import multihost_config  # noqa: E402
from flaxzoo.train.loop import train  # noqa: E402

assert jax.device_count() == 8 and jax.local_device_count() == 4
train(multihost_config(), workdir)
