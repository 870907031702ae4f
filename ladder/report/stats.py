"""The report's statistics: Student t quantiles, Welch intervals, and verdicts on a change."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# Two-sided 95% Student t quantiles t_{0.975, df}; checked against a numerical integration of
# the t density in tests/test_report.py. Between tabulated dfs the next lower df is used (wider
# interval, never narrower); above 120 the normal 1.96.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}

# Verdicts on a step's change (CSV column ``verdict``).
GAIN, HURT, NOISE, FEW = "gain", "hurt", "within noise", "n<2"
ROOT, MISSING, NO_PARENT = "root", "missing", "parent missing"


def t975(df: int) -> float:
    """t_{0.975, df} from the table (df rounded down to the next tabulated value)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    tab = max(k for k in _T975 if k <= df) if df <= 120 else None
    return _T975[tab] if tab is not None else 1.96


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, int] | None:
    """95% Welch t-interval for mean(a) - mean(b); df rounded down. None when n < 2 on a side.

    Returns (low, high, df). With zero spread on both sides the interval is the point itself.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    return welch_from_summary(float(np.mean(a)), float(np.std(a, ddof=1)), len(a),
                              float(np.mean(b)), float(np.std(b, ddof=1)), len(b))


def welch_from_summary(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float,
                       n_b: int) -> tuple[float, float, int] | None:
    """:func:`welch_interval` from each side's mean, sample std and n (e.g. a paper's mean +-
    std of 3 seeds). None when n < 2 on a side."""
    if n_a < 2 or n_b < 2:
        return None
    d = mean_a - mean_b
    v1, v2 = std_a * std_a / n_a, std_b * std_b / n_b
    se2 = v1 + v2
    if se2 == 0.0:
        return d, d, n_a + n_b - 2
    denom = (v1 * v1 / (n_a - 1) if v1 else 0.0) + (v2 * v2 / (n_b - 1) if v2 else 0.0)
    df = max(1, math.floor(se2 * se2 / denom))
    half = t975(df) * math.sqrt(se2)
    return d - half, d + half, df


def verdict(ci: tuple[float, float, int] | None) -> str:
    """gain / hurt when the interval excludes 0 on that side, within noise when it contains 0,
    n<2 when there is no interval."""
    if ci is None:
        return FEW
    return GAIN if ci[0] > 0 else HURT if ci[1] < 0 else NOISE
