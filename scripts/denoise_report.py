#!/usr/bin/env python
"""The default job's report (`flaxzoo-denoise-report`); see `python scripts/denoise_report.py --help`."""
import sys

from flaxzoo.scripts.denoise_report import main

if __name__ == "__main__":
    sys.exit(main())
