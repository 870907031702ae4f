"""The report's statistics: Student t quantiles, Welch intervals, verdicts on a change, and the
pooled seed noise of a section.

Two intervals for each step's change (mean of the rung - mean of its parent), both 95%:

* **Welch** (``welch_interval``): each side's own seed variance, Welch-Satterthwaite df rounded
  down; needs 2 seeds a side. With 2 seeds a side its df is 1 (t = 12.7), so little resolves.
* **Pooled** (``pooled_noise`` + ``pooled_interval``): every rung of one section (one dataset,
  budget and view) shares the same source of seed noise, so the within-rung variances are pooled
  as in a one-way ANOVA: s_p^2 = sum((n_i - 1) s_i^2) / sum(n_i - 1) over the rungs with n_i >= 2,
  df = sum(n_i - 1), and the change gets +- t_{0.975, df} s_p sqrt(1/n_a + 1/n_b) (a side may
  then have a single seed). The rule is **used** only when Bartlett's test of equal variances
  (``bartlett``; chi^2 with k - 1 df, Bartlett's correction factor) does not reject at
  alpha = 0.05 (``ALPHA``); when it rejects, or can't be run (fewer than 2 rungs with 2 seeds,
  or a rung whose seeds tie exactly), the pooled interval is still shown but its verdict says
  so instead of gain / hurt. Bartlett, not Levene / Brown-Forsythe: with 2 seeds a rung, both
  of a rung's absolute deviations from its median (or mean) are |a - b| / 2, so Levene's
  within-group variance is 0 and its F statistic is undefined; Bartlett needs only n_i >= 2. It
  assumes normal seeds and, with 1 df a rung, has little power: passing it is weak evidence.
  docs/report-statistics.md has the details.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
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
# Pooled verdicts when the pooled rule does not apply (the interval is shown, not used).
UNEQUAL, UNTESTED = "variances differ", "untested"

ALPHA = 0.05  # Bartlett's test: the pooled rule is used when p >= ALPHA


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


def contrast_from_summary(terms: Sequence[tuple[float, float, float, int]]
                          ) -> tuple[float, float, int] | None:
    """95% Welch-Satterthwaite interval for ``sum(c * mean)`` over independent groups given as
    ``(c, mean, sample std, n)`` (e.g. the sum of several separate stretches of a ladder);
    df rounded down. With two terms ``(1, a), (-1, b)`` it is :func:`welch_from_summary`. None
    when a group has n < 2."""
    if any(n < 2 for _c, _m, _s, n in terms):
        return None
    d = sum(c * m for c, m, _s, _n in terms)
    parts = [(c * c * sd * sd / n, n) for c, _m, sd, n in terms]
    se2 = sum(v for v, _n in parts)
    if se2 == 0.0:
        return d, d, sum(n - 1 for _v, n in parts)
    df = max(1, math.floor(se2 * se2 / sum(v * v / (n - 1) for v, n in parts if v)))
    half = t975(df) * math.sqrt(se2)
    return d - half, d + half, df


def contrast_interval(terms: Sequence[tuple[float, Sequence[float]]]
                      ) -> tuple[float, float, int] | None:
    """:func:`contrast_from_summary` from each group's values: ``(c, values)`` terms."""
    if any(len(v) < 2 for _c, v in terms):
        return None
    return contrast_from_summary([(c, float(np.mean(v)), float(np.std(v, ddof=1)), len(v))
                                  for c, v in terms])


def verdict(ci: tuple[float, float, int] | None) -> str:
    """gain / hurt when the interval excludes 0 on that side, within noise when it contains 0,
    n<2 when there is no interval."""
    if ci is None:
        return FEW
    return GAIN if ci[0] > 0 else HURT if ci[1] < 0 else NOISE


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi^2 with integer ``df`` >= 1, from the closed forms (even df: a Poisson
    sum; odd df: erfc plus a finite series), summed in log space so large x cannot overflow."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    half = x / 2
    if df % 2 == 0:  # exp(-x/2) * sum_{j < df/2} (x/2)^j / j!
        logs = [j * math.log(half) - math.lgamma(j + 1) - half for j in range(df // 2)]
        total = 0.0
    else:  # erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2) * sum_{j < (df-1)/2} x^j / (1*3*...*(2j+1))
        base = 0.5 * math.log(2 * x / math.pi) - half
        logs, acc = [], 0.0
        for j in range((df - 1) // 2):
            acc += math.log(x) - math.log(2 * j + 1) if j else 0.0
            logs.append(base + acc)
        total = math.erfc(math.sqrt(half))
    return min(1.0, total + sum(math.exp(v) for v in logs))


def bartlett(groups: Sequence[Sequence[float]]) -> tuple[float, int, float] | None:
    """Bartlett's test of equal variances over the groups with >= 2 values: (statistic, df,
    p-value). None when fewer than 2 such groups, or when a group has zero variance (its log is
    -inf: the test is undefined)."""
    gs = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if len(gs) < 2:
        return None
    nu = np.array([len(g) - 1 for g in gs], dtype=float)
    var = np.array([np.var(g, ddof=1) for g in gs])
    if np.any(var <= 0):
        return None
    n_tot, k = nu.sum(), len(gs)
    sp2 = float((nu * var).sum() / n_tot)
    stat = (n_tot * math.log(sp2) - float((nu * np.log(var)).sum())) / (
        1 + (float((1 / nu).sum()) - 1 / n_tot) / (3 * (k - 1)))
    stat = max(float(stat), 0.0)  # equal variances give 0 up to rounding
    return stat, k - 1, chi2_sf(stat, k - 1)


@dataclass
class PooledNoise:
    """The pooled seed noise of one section, and whether the pooled rule applies."""

    sd: float  # s_p, the root of the ANOVA error mean square
    df: int  # sum(n_i - 1)
    k: int  # rungs with >= 2 seeds (the ones that carry variance)
    test: tuple[float, int, float] | None  # Bartlett (statistic, df, p); None: not testable
    reason: str  # why the rule is not used ("" when it is)

    @property
    def valid(self) -> bool:
        return not self.reason


def pooled_noise(groups: Sequence[Sequence[float]], alpha: float = ALPHA) -> PooledNoise | None:
    """The pooled seed std over the groups (one per rung; groups with one value add nothing)
    and Bartlett's verdict on pooling them. None when no group has 2 values."""
    gs = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in gs)
    if df < 1:
        return None
    sd = math.sqrt(sum((len(g) - 1) * float(np.var(g, ddof=1)) for g in gs) / df)
    test = bartlett(gs)
    if len(gs) < 2:
        reason = "only one rung has 2 or more seeds, so equal variances can't be tested"
    elif test is None:
        reason = "a rung's seeds tie exactly (zero variance), so Bartlett's test is undefined"
    elif test[2] < alpha:
        reason = f"Bartlett's test rejects equal variances (p = {test[2]:.2g} < {alpha:g})"
    else:
        reason = ""
    return PooledNoise(sd, df, len(gs), test, reason)


def pooled_interval(a: Sequence[float], b: Sequence[float],
                    noise: PooledNoise | None) -> tuple[float, float, int] | None:
    """95% interval for mean(a) - mean(b) from the pooled std: +- t_{0.975, df} s_p
    sqrt(1/n_a + 1/n_b), df the pooled df. None when a side is empty or there is no pooled
    noise."""
    if not len(a) or not len(b) or noise is None:
        return None
    d = float(np.mean(a)) - float(np.mean(b))
    half = t975(noise.df) * noise.sd * math.sqrt(1 / len(a) + 1 / len(b))
    return d - half, d + half, noise.df


def pooled_verdict(ci: tuple[float, float, int] | None, noise: PooledNoise | None) -> str:
    """:func:`verdict` of the pooled interval when the pooled rule applies; else why not."""
    if ci is None or noise is None:
        return FEW
    if not noise.valid:
        return UNTESTED if noise.test is None else UNEQUAL
    return verdict(ci)
