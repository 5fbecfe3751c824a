#!/usr/bin/env python
"""SNMF vs SAE vs DiffMeans vs PCA, detection and steering: the same program as `flaxzoo-interpret-bench`.

    python scripts/interpret_bench.py --vision-weights runs/swin_textures --text-weights runs/uoe_lm_pydoc

See `python scripts/interpret_bench.py --help`.
"""
import sys

from flaxzoo.scripts.interpret_bench import main

if __name__ == "__main__":
    sys.exit(main())
