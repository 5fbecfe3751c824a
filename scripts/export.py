#!/usr/bin/env python
"""Export a model (jax.export, ONNX, TFLite): the same program as the `flaxzoo-export` console script.

    python scripts/export.py --model maxim_tiny --format jax --size 64x64 --dynamic batch,height,width --out maxim.jaxexport

See `python scripts/export.py --help`.
"""
import sys

from flaxzoo.scripts.export import main

if __name__ == "__main__":
    sys.exit(main())
