#!/usr/bin/env python
"""Evaluate a model on a benchmark split: the same program as the `flaxzoo-eval` console script.

    python scripts/eval.py --model maxim_s3_denoising_sidd --weights checkpoint.npz --data tfds:sidd/validation --out eval/sidd

See `python scripts/eval.py --help`.
"""
import sys

from flaxzoo.scripts.eval import main

if __name__ == "__main__":
    sys.exit(main())
