#!/usr/bin/env python
"""Restore a folder of images with MAXIM: the same program as the `flaxzoo-restore` console script.

    python scripts/restore.py --weights runs/maxim_denoise/model.safetensors --input noisy/ --output restored/

See `python scripts/restore.py --help`.
"""
import sys

from flaxzoo.scripts.restore import main

if __name__ == "__main__":
    sys.exit(main())
