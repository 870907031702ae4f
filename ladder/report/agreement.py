"""Agreement of a section's measured ladder with its reference (its ladder file's ``reference``:
Table 10 of the ConvNeXt paper for ConvNeXt's).

Three numbers per section (one dataset, budget and view), each beside the paper's:

* the **rank correlation** (Spearman, average ranks for ties) of the rung means with the paper's
  top-1, with a percentile bootstrap 95% interval: each rung's seeds are resampled with
  replacement, the rung means and the correlation recomputed (``N_BOOT`` resamples, RNG seed
  ``BOOT_SEED``, so the report is reproducible). A rung with one seed contributes its single
  value to every resample, so the interval leaves that rung's noise out;
* the **ends' gap**, top rung - bottom rung of the view (ConvNeXt-T - ResNet-50), with its Welch
  and its pooled 95% interval, beside the paper's gap from the section's ladder;
* the **direction** of the steps: how many move the way the paper's do, and how many of the
  resolved ones (interval excludes 0) do, under Welch and under the pooled rule. Steps whose
  paper change is exactly 0 (kernel 9 vs kernel 7) have no direction and are not counted.

Rungs without reference numbers (a step a user added to a ladder) are left out of all three.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ladder.report.stats import (ALPHA, GAIN, HURT, PooledNoise, pooled_interval, verdict,
                                 welch_interval)
from ladder.report.table import (GroupInfo, Row, ladder_column, ladder_field, paper_change,
                                 section_noise)

AGREEMENT_FILE = "agreement.csv"
N_BOOT = 2000
BOOT_SEED = 0
MIN_RUNGS = 3  # fewer measured rungs: no rank correlation


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties sharing the average of their ranks."""
    x = np.asarray(x, dtype=float)
    less = (x[..., None, :] < x[..., :, None]).sum(-1)
    same = (x[..., None, :] == x[..., :, None]).sum(-1)
    return less + (same + 1) / 2


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (the Pearson correlation of the average ranks); None when
    either side's ranks are all equal."""
    return _spearman_rows(np.asarray(x, dtype=float)[None], np.asarray(y, dtype=float))[0]


def _spearman_rows(xs: np.ndarray, y: np.ndarray) -> list[float | None]:
    """Spearman of each row of ``xs`` (shape (B, k)) with ``y`` (shape (k,))."""
    rx = average_ranks(xs)
    rx = rx - rx.mean(-1, keepdims=True)
    ry = average_ranks(y)
    ry = ry - ry.mean()
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum())
    num = (rx * ry).sum(-1)
    return [float(n / d) if d > 0 else None for n, d in zip(num, den)]


def bootstrap_spearman(values: Sequence[Sequence[float]], paper: Sequence[float],
                       n_boot: int = N_BOOT, seed: int = BOOT_SEED
                       ) -> tuple[float, float, int] | None:
    """Percentile 95% interval of Spearman(rung means, paper) over ``n_boot`` resamples of each
    rung's seeds (with replacement); (low, high, resamples with a defined correlation)."""
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, len(values)))
    for i, v in enumerate(values):
        v = np.asarray(v, dtype=float)
        means[:, i] = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    rhos = [r for r in _spearman_rows(means, np.asarray(paper, dtype=float)) if r is not None]
    if not rhos:
        return None
    lo, hi = np.percentile(rhos, [2.5, 97.5])
    return float(lo), float(hi), len(rhos)


@dataclass
class Agreement:
    """One section's agreement with the paper."""

    rungs: list[str]  # the measured rungs, ladder order
    single: list[str]  # of those, rungs with one seed
    two: bool  # some rung has exactly 2 seeds (the bootstrap is coarse there)
    spearman: float | None
    spearman_ci: tuple[float, float, int] | None  # bootstrap (low, high, valid resamples)
    bottom: Row
    top: Row
    gap: float | None  # measured top - bottom
    gap_welch: tuple[float, float, int] | None
    gap_pooled: tuple[float, float, int] | None
    paper_gap: float | None  # None where the reference has no number for an end
    noise: PooledNoise | None
    steps: list[Row] = field(default_factory=list)  # measured changes with a paper direction
    flat: list[Row] = field(default_factory=list)  # measured changes the paper puts at 0

    def along(self, rows: list[Row]) -> list[Row]:
        """The rows that move the paper's way."""
        return [r for r in rows if (r.delta > 0) == (r.paper_delta > 0) and r.delta != 0]

    @property
    def resolved_welch(self) -> list[Row]:
        return [r for r in self.steps if r.verdict in (GAIN, HURT)]

    @property
    def resolved_pooled(self) -> list[Row] | None:
        """Steps resolved under the pooled rule; None when the rule does not apply."""
        if self.noise is None or not self.noise.valid:
            return None
        return [r for r in self.steps if r.pooled_verdict in (GAIN, HURT)]


def compute_agreement(rows: list[Row], n_boot: int = N_BOOT,
                      seed: int = BOOT_SEED) -> Agreement:
    """The agreement of a view's rows (from ``build_table``) with the paper."""
    measured = [r for r in rows if r.n and r.rung.paper_top1 is not None]
    values = [r.values for r in measured]
    paper = [r.rung.paper_top1 for r in measured]
    rho = spearman([r.mean for r in measured], paper) if len(measured) >= MIN_RUNGS else None
    boot = bootstrap_spearman(values, paper, n_boot, seed) if rho is not None else None
    bottom, top = rows[0], rows[-1]
    noise = section_noise(rows)
    both = bool(bottom.n and top.n)
    changed = [r for r in rows if r.delta is not None and r.paper_delta is not None]
    return Agreement(
        rungs=[r.rung.name for r in measured], single=[r.rung.name for r in measured if r.n == 1],
        two=any(r.n == 2 for r in measured),
        spearman=rho, spearman_ci=boot, bottom=bottom, top=top,
        gap=top.mean - bottom.mean if both else None,
        gap_welch=welch_interval(top.values, bottom.values),
        gap_pooled=pooled_interval(top.values, bottom.values, noise) if both else None,
        paper_gap=paper_change(top.rung, bottom.rung), noise=noise,
        steps=[r for r in changed if abs(r.paper_delta) > 1e-9],
        flat=[r for r in changed if abs(r.paper_delta) <= 1e-9])


def _f(x: float | None, fmt: str = "+.2f") -> str:
    return "\u2014" if x is None else format(x, fmt).replace("-", "\u2212")


def _ci(ci: tuple[float, float, int] | None, fmt: str = "+.2f") -> str:
    return "no interval" if ci is None else f"[{_f(ci[0], fmt)}, {_f(ci[1], fmt)}]"


def _names(rows: list[Row]) -> str:
    return ", ".join(f"`{r.rung.name}`" for r in rows)


def _count(a: Agreement, rows: list[Row]) -> str:
    return f"{len(a.along(rows))} of {len(rows)}"


def agreement_findings(a: Agreement) -> list[str]:
    """The "Agreement with the paper" block: one sentence per number."""
    out = []
    if a.spearman is None:
        out.append(f"Rank correlation with the paper's top-1: none ({len(a.rungs)} rung(s) "
                   f"measured; it needs {MIN_RUNGS} with distinct means).")
    else:
        single = (f" {len(a.single)} rung(s) have one seed ({_names_str(a.single)}) and enter "
                  "every resample with their single value, so the interval leaves their noise "
                  "out." if a.single else "")
        n_ok = a.spearman_ci[2] if a.spearman_ci else 0
        dropped = (f"; {N_BOOT - n_ok} resample(s) with all means tied have no correlation "
                   "and are left out" if n_ok < N_BOOT else "")
        two = (" With 2 seeds a rung the interval is too narrow: a resampled mean of 2 seeds "
               "takes 3 values and has half the variance of the mean itself." if a.two else "")
        flat = (" No resample changed the order of the rung means, so the interval has no "
                "width: the seeds measured agree on the ranks; it is not a claim that more "
                "seeds would." if a.spearman_ci and a.spearman_ci[0] == a.spearman_ci[1]
                and not a.two and len(a.single) < len(a.rungs) else "")
        out.append(f"Rank correlation of the {len(a.rungs)} rung means with the paper's top-1 "
                   f"(Spearman): {_f(a.spearman)}, 95% bootstrap interval "
                   f"{_ci(a.spearman_ci)} ({N_BOOT} resamples of each rung's seeds, RNG seed "
                   f"{BOOT_SEED}{dropped}).{single}{two}{flat}")
    ends = f"`{a.top.rung.name}` \u2212 `{a.bottom.rung.name}`"
    if a.gap is None:
        absent = _names([r for r in (a.top, a.bottom) if not r.n])
        out.append(f"Ends' gap {ends}: not measured ({absent} not run); paper "
                   f"{_f(a.paper_gap)}.")
    else:
        pooled = "no pooled interval"
        if a.gap_pooled is not None:
            pooled = (f"pooled {_ci(a.gap_pooled)} (df {a.gap_pooled[2]}"
                      + ("" if a.noise.valid else ", not used: see the pooled seed noise below")
                      + ")")
        welch = (f"Welch {_ci(a.gap_welch)} (df {a.gap_welch[2]})" if a.gap_welch
                 else "no Welch interval (an end has one seed)")
        out.append(f"Ends' gap {ends}: {_f(a.gap)}, {welch}, {pooled}; paper {_f(a.paper_gap)}.")
    flat = (f" ({_names(a.flat)}: the paper's change is 0.00, no direction to match)"
            if a.flat else "")
    s = f"Steps moving in the paper's direction: {_count(a, a.steps)}{flat}"
    welch = a.resolved_welch
    s += (f"; of those resolved by their Welch interval, {_count(a, welch)}" if welch
          else "; none is resolved by its Welch interval")
    pooled = a.resolved_pooled
    if pooled is None:
        s += "; the pooled rule does not apply here (see the pooled seed noise below)."
    else:
        s += (f"; of those resolved under the pooled rule, {_count(a, pooled)}." if pooled
              else "; none is resolved under the pooled rule.")
    out.append(s)
    return out


def _names_str(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def pooled_findings(rows: list[Row], noise: PooledNoise | None) -> list[str]:
    """The pooled seed noise and which steps resolve under it."""
    if noise is None:
        return ["Pooled seed noise: none (no rung has 2 seeds)."]
    test = ("Bartlett's test can't be run" if noise.test is None else
            f"Bartlett's test of equal variances: \u03c7\u00b2 = {noise.test[0]:.2f} "
            f"(df {noise.test[1]}), p = {noise.test[2]:.2g}")
    s = (f"Pooled seed noise over the {noise.k} rung(s) with 2 or more seeds: s = "
         f"{noise.sd:.2f} points (df {noise.df}); {test}.")
    if not noise.valid:
        return [s + f" The pooled intervals are shown but not used: {noise.reason}; the Welch "
                "intervals stand."]
    steps = [r for r in rows if r.pooled_ci is not None]
    up = [r for r in steps if verdict(r.pooled_ci) == GAIN]
    down = [r for r in steps if verdict(r.pooled_ci) == HURT]
    s += f" The pooled rule applies (p \u2265 {ALPHA:g}): "
    if not up and not down:
        return [s + f"none of the {len(steps)} step(s) resolves under it either."]
    parts = []
    for label, rs in (("above 0", up), ("below 0", down)):
        if rs:
            parts.append(f"{len(rs)} resolve {label}: " + ", ".join(
                f"`{r.rung.name}` {_f(r.delta)} {_ci(r.pooled_ci)} (paper {_f(r.paper_delta)})"
                for r in rs))
        else:
            parts.append(f"none resolves {label}")
    return [s + f"of the {len(steps)} step(s), " + "; ".join(parts) + "."]


AGREEMENT_FIELDS = ("dataset", "image_size", "experiment", "view", "quantity", "value",
                    "ci_low", "ci_high", "df", "n", "paper", "note", "data_id", "budget")


def agreement_rows(a: Agreement, info: GroupInfo, view: str) -> list[list]:
    """agreement.csv's rows for one section (docs/report-statistics.md lists the quantities)."""
    def c(x: float | None, nd: int = 4) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"

    def ci(t, i):
        return c(t[i]) if t else ""

    head = [info.key[0], info.key[1] or "", info.key[2], view]
    noise = a.noise
    pooled_ok = "" if noise is None else ("used" if noise.valid else f"not used: {noise.reason}")
    out = [
        ["spearman", c(a.spearman), ci(a.spearman_ci, 0), ci(a.spearman_ci, 1), "",
         len(a.rungs), "", f"bootstrap {N_BOOT}, seed {BOOT_SEED}; one-seed rungs fixed: "
         + (";".join(a.single) or "none")],
        ["gap_welch", c(a.gap), ci(a.gap_welch, 0), ci(a.gap_welch, 1),
         a.gap_welch[2] if a.gap_welch else "", "", c(a.paper_gap, 2),
         f"{a.top.rung.name} - {a.bottom.rung.name}"],
        ["gap_pooled", c(a.gap), ci(a.gap_pooled, 0), ci(a.gap_pooled, 1),
         a.gap_pooled[2] if a.gap_pooled else "", "", c(a.paper_gap, 2), pooled_ok],
        ["steps_paper_direction", len(a.along(a.steps)), "", "", "", len(a.steps), "",
         "paper change 0: " + (";".join(r.rung.name for r in a.flat) or "none")],
        ["resolved_welch_paper_direction", len(a.along(a.resolved_welch)), "", "", "",
         len(a.resolved_welch), "", ""],
    ]
    pooled = a.resolved_pooled
    out.append(["resolved_pooled_paper_direction",
                "" if pooled is None else len(a.along(pooled)), "", "", "",
                "" if pooled is None else len(pooled), "", pooled_ok])
    out.append(["pooled_sd", c(noise.sd) if noise else "", "", "", noise.df if noise else "",
                noise.k if noise else "", "", pooled_ok])
    test = noise.test if noise else None
    out.append(["bartlett", c(test[0]) if test else "", "", "", test[1] if test else "",
                "", "", f"p={test[2]:.4g}" if test else "not testable"])
    tail = [info.key.data_id or "", f"{info.key.budget:g}", *ladder_column(info)]
    return [head + r + tail for r in out]


def write_agreement_csv(path: Path, sections: list[tuple[Agreement, GroupInfo, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(AGREEMENT_FIELDS + (ladder_field(sections[0][1]) if sections else ()))
        for a, info, view in sections:
            w.writerows(agreement_rows(a, info, view))


def agreement_summary(a: Agreement) -> dict[str, float | int | bool | None]:
    """W&B summary entries (keys under ``agreement/``)."""
    def part(t, i):
        return t[i] if t else None

    pooled = a.resolved_pooled
    return {
        "agreement/spearman": a.spearman,
        "agreement/spearman_lo": part(a.spearman_ci, 0),
        "agreement/spearman_hi": part(a.spearman_ci, 1),
        "agreement/rungs": len(a.rungs),
        "agreement/gap": a.gap,
        "agreement/gap_lo": part(a.gap_welch, 0),
        "agreement/gap_hi": part(a.gap_welch, 1),
        "agreement/gap_pooled_lo": part(a.gap_pooled, 0),
        "agreement/gap_pooled_hi": part(a.gap_pooled, 1),
        "agreement/gap_paper": a.paper_gap,
        "agreement/steps": len(a.steps),
        "agreement/steps_paper_direction": len(a.along(a.steps)),
        "agreement/resolved": len(a.resolved_welch),
        "agreement/resolved_paper_direction": len(a.along(a.resolved_welch)),
        "agreement/resolved_pooled": None if pooled is None else len(pooled),
        "agreement/resolved_pooled_paper_direction": (None if pooled is None
                                                      else len(a.along(pooled))),
        "agreement/pooled_sd": a.noise.sd if a.noise else None,
        "agreement/pooled_df": a.noise.df if a.noise else None,
        "agreement/pooled_valid": bool(a.noise and a.noise.valid),
        "agreement/bartlett_p": part(a.noise.test if a.noise else None, 2),
    }
