#!/usr/bin/env python
"""SNMF features of one MLP layer, with a report: the same program as the `flaxzoo-interpret` console script.

    python scripts/interpret.py --weights runs/swin_textures --layer layers.2.blocks.1.mlp --data offline:textures --out reports/swin

See `python scripts/interpret.py --help`.
"""
import sys

from flaxzoo.scripts.interpret import main

if __name__ == "__main__":
    sys.exit(main())
