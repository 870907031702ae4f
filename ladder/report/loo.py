"""The leave-one-out view: each architectural change undone alone at the top (the last rung of
the section's ladder: ConvNeXt-T on ConvNeXt's), beside the same change's value on the ladder.

A change's value is "with it minus without it", both places: at the top ``mean(top) -
mean(top with the change undone)``, on the ladder ``mean(after) - mean(before)`` (the rungs
around its step, or steps when several change one key). Each with a 95% Welch interval. The
changes come from :func:`ladder.ladders.variants.leave_one_out`; runs are matched to them by their model
config, so it does not matter where they were written.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ladder.report.ladders import ladder_of, runs_ladder
from ladder.report.load import RunResult
from ladder.report.stats import MISSING, verdict, welch_interval
from ladder.report.table import (GroupInfo, _latest_per_seed, ladder_column, ladder_field,
                                 paper_change)
from ladder.ladders.rungs import DEFAULT_LADDER, Ladder
from ladder.ladders.variants import Undo, leave_one_out, match_undo


@dataclass
class Value:
    """One change's value somewhere: mean(with) - mean(without), with a 95% interval."""

    with_: list[float]
    without: list[float]

    @property
    def delta(self) -> float | None:
        return (float(np.mean(self.with_) - np.mean(self.without))
                if self.with_ and self.without else None)

    @property
    def ci(self) -> tuple[float, float, int] | None:
        return welch_interval(self.with_, self.without)

    @property
    def verdict(self) -> str:
        return verdict(self.ci) if self.delta is not None else MISSING

    @property
    def n(self) -> tuple[int, int]:
        return len(self.with_), len(self.without)


@dataclass
class LooRow:
    index: int
    undo: Undo
    at_top: Value
    on_ladder: Value
    n_failed: int
    ladder: Ladder | None = field(default=None, repr=False)  # the section's (None: default)

    @property
    def paper(self) -> float | None:
        """The reference's change on the ladder (None without both numbers)."""
        ladder = self.ladder or ladder_of()
        return paper_change(ladder.resolve(self.undo.after), ladder.resolve(self.undo.before))


def _variants_ladder(ladder: Ladder) -> str | None:
    """How ladder/ladders/variants.py names a ladder (None: the default, sharing its cache)."""
    return None if ladder.name == DEFAULT_LADDER else ladder.name


def build_loo(runs: list[RunResult], metric: str = "top1", top: str | None = None
              ) -> tuple[list[LooRow], tuple[tuple[str, str], ...], list[RunResult]]:
    """(one row per change, in the order of the runs' ladder; the steps left out with the
    reason; runs of variants that match no change)."""
    ladder = runs_ladder(runs)
    undos, skipped = leave_one_out(top, _variants_ladder(ladder))
    top = undos[0].top
    done = [r for r in _latest_per_seed(runs) if r.metrics.get(metric) is not None]

    def values(rung: str, undo: Undo | None = None) -> list[float]:
        mine = [r for r in done if r.rung == rung
                and (match_undo(r.variant, [undo]) if undo else not r.variant)]
        return [r.metrics[metric] for r in sorted(mine, key=lambda r: r.seed or 0)]

    rows = []
    for i, undo in enumerate(undos):
        failed = [r for r in runs if r.rung == top and r.status != "completed"
                  and match_undo(r.variant, [undo])]
        rows.append(LooRow(i, undo, Value(values(top), values(top, undo)),
                           Value(values(undo.after), values(undo.before)), len(failed),
                           ladder))
    others = [r for r in runs if r.variant and (r.rung != top or not match_undo(r.variant, undos))]
    return rows, skipped, others


def has_loo_runs(runs: list[RunResult], top: str | None = None) -> bool:
    """Whether any run of the group is a leave-one-out variant (of the top of its ladder)."""
    top = top or runs_ladder(runs).main_path()[-1]
    return any(r.rung == top and r.variant for r in runs)


def _f(x: float | None) -> str:
    return "\u2014" if x is None else format(x, "+.2f").replace("-", "\u2212")


def _cell(v: Value) -> str:
    if v.delta is None:
        return "\u2014 (n=%d, %d)" % v.n
    s = _f(v.delta)
    if v.ci is not None:
        s += f" [{_f(v.ci[0])}, {_f(v.ci[1])}]"
    return s + " (n=%d, %d)" % v.n


def markdown(rows: list[LooRow], skipped, others: list[RunResult]) -> str:
    top = rows[0].undo.top
    lines = [f"| # | change undone at `{top}` | ladder step(s) | at the top: with \u2212 without "
             "[95% CI] (n) | verdict | on the ladder: after \u2212 before [95% CI] (n) | verdict "
             "| paper, on the ladder |", "|" + "---|" * 8]
    for row in rows:
        u = row.undo
        steps = " + ".join(f"`{s}`" for s in u.steps) + f" (vs `{u.before}`)"
        if u.refused:
            top_cell, top_verdict = "refused by the schema", ""
        else:
            top_cell = _cell(row.at_top) + (f" ({row.n_failed} failed)" if row.n_failed else "")
            top_verdict = row.at_top.verdict
        lines.append(f"| {row.index} | {u.label} | {steps} | {top_cell} | {top_verdict} | "
                     f"{_cell(row.on_ladder)} | {row.on_ladder.verdict} | {_f(row.paper)} |")
    refused = [r.undo for r in rows if r.undo.refused]
    if refused:
        lines += ["", "Combinations the schema refuses (not run):", ""]
        lines += [f"- `{u.name}` ({u.label}): {u.refused}" for u in refused]
    if skipped:
        lines += ["", "Steps that are not a change of the architecture (no leave-one-out):", ""]
        lines += [f"- `{rung}`: {reason}" for rung, reason in skipped]
    if others:
        lines += ["", f"{len(others)} run(s) change the architecture in a way that matches no "
                  f"single change and are left out: " + ", ".join(
                      f"`{r.rung}` {' '.join(f'{k}={v}' for k, v in r.variant)} seed {r.seed}"
                      for r in others[:8]) + (" ..." if len(others) > 8 else "")]
    return "\n".join(lines)


def findings(rows: list[LooRow]) -> list[str]:
    """One sentence per finding."""
    run = [r for r in rows if not r.undo.refused and r.at_top.delta is not None]
    out = []
    if not run:
        return ["No change has been undone at the top yet (or the top itself has no run)."]
    for v, what in (("gain", "still add accuracy at the top (removing them hurts; interval "
                              "above 0)"),
                    ("hurt", "cost accuracy at the top (removing them helps; interval below 0)"),
                    ("within noise", "can't be told from zero at the top")):
        these = [r for r in run if r.at_top.verdict == v]
        if these:
            out.append(f"{len(these)} change(s) {what}: "
                       + ", ".join(f"{r.undo.label} {_f(r.at_top.delta)}" for r in these) + ".")
    few = [r for r in run if r.at_top.verdict == "n<2"]
    if few:
        out.append(f"{len(few)} change(s) have fewer than 2 seeds on a side at the top.")
    both = [r for r in run if r.at_top.ci and r.on_ladder.ci]
    differ = [r for r in both if r.at_top.verdict != r.on_ladder.verdict]
    if both:
        out.append(f"Of the {len(both)} change(s) with an interval both at the top and on the "
                   f"ladder, {len(both) - len(differ)} get the same verdict in both places"
                   + (": the others are " + ", ".join(
                       f"{r.undo.label} ({r.on_ladder.verdict} on the ladder, "
                       f"{r.at_top.verdict} at the top)" for r in differ) if differ else "")
                   + ". A change's value depends on what else the network has, so the two need "
                   "not agree.")
    out.append(f"These are separate 95% intervals with no correction for multiple comparisons "
               f"({len(run)} at the top).")
    return out


CSV_FIELDS = ("dataset", "image_size", "experiment", "index", "change", "label", "steps",
              "before", "after", "refused", "top_n", "without_n", "top_delta", "top_ci_low",
              "top_ci_high", "top_verdict", "ladder_n_after", "ladder_n_before", "ladder_delta",
              "ladder_ci_low", "ladder_ci_high", "ladder_verdict", "paper_ladder_delta",
              "data_id", "budget")


def write_csv(path: Path, rows: list[LooRow], info: GroupInfo) -> None:
    def c(x: Any) -> str:
        return "" if x is None else f"{x:.4f}"

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS + ladder_field(info))
        for row in rows:
            u, t, lad = row.undo, row.at_top, row.on_ladder
            w.writerow([info.key[0], info.key[1] or "", info.key[2], row.index, u.name, u.label,
                        "+".join(u.steps), u.before, u.after, u.refused or "", *t.n,
                        c(t.delta), c(t.ci[0] if t.ci else None), c(t.ci[1] if t.ci else None),
                        "" if u.refused else t.verdict, *lad.n, c(lad.delta),
                        c(lad.ci[0] if lad.ci else None), c(lad.ci[1] if lad.ci else None),
                        lad.verdict, "" if row.paper is None else f"{row.paper:.2f}",
                        info.key.data_id or "", f"{info.key.budget:g}", *ladder_column(info)])
