#!/usr/bin/env python
"""BENCHMARKS.md tables from bench/*.json (`flaxzoo-bench-report`); see `python scripts/bench_report.py --help`."""
import sys

from flaxzoo.scripts.bench_report import main

if __name__ == "__main__":
    sys.exit(main())
