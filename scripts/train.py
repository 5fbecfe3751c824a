"""Train a model from a config file: the same program as the `flaxzoo-train` console script.

    python scripts/train.py --config configs/swin/textures.py --workdir runs/swin_textures

See `python scripts/train.py --help` (and `--config FILE --help` for a config's fields).
"""
import sys

from flaxzoo.scripts.train import main

if __name__ == "__main__":
    sys.exit(main())
