"""TensorBoard event files through tensorboardX (protobuf only, no TensorFlow). Process 0 writes."""
from __future__ import annotations

import os

import numpy as np


class TensorBoard:
    def __init__(self, workdir: str, *, active: bool = True):
        self.writer = None
        if active:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(workdir, "tb"), flush_secs=30)

    def scalars(self, step: int, values: dict) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def images(self, step: int, name: str, images) -> None:
        """images: (N, H, W, C) floats in [0, 1], C = 1 or 3."""
        if self.writer is not None:
            self.writer.add_images(name, np.clip(np.asarray(images, np.float32), 0.0, 1.0), step,
                                   dataformats="NHWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
