#!/usr/bin/env python
"""Benchmark a model (`flaxzoo-benchmark`); `make bench` runs `--suite cpu`. See `python scripts/benchmark.py --help`."""
import sys

from flaxzoo.scripts.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
