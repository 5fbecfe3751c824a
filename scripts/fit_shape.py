#!/usr/bin/env python
"""Fit, measure, render and export one shape with a proxy-node field: the `flaxzoo-fit-shape` console script.

    python scripts/fit_shape.py --shape builtin:ant --preset proxy_field_64 --out runs/fit_ant

See `python scripts/fit_shape.py --help`.
"""
import sys

from flaxzoo.scripts.fit_shape import main

if __name__ == "__main__":
    sys.exit(main())
