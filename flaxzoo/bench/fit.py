"""Scaling exponent: the slope of log(time) against log(size) by least squares (time ~ c * x^k)."""
from __future__ import annotations

import numpy as np


def power_law_exponent(xs, ys) -> float | None:
    """k of y = c * x^k fitted on log-log axes; None with fewer than two distinct positive points."""
    x, y = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    keep = (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        return None
    slope, _ = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope)
