"""The report as text: the markdown table, the findings and the CSV."""
from __future__ import annotations

import csv
from pathlib import Path

from ladder.report.agreement import pooled_findings
from ladder.report.attribution import split, split_findings
from ladder.report.ladders import reference_scope
from ladder.report.stats import (FEW, GAIN, HURT, MISSING, NO_PARENT, NOISE, ROOT, UNEQUAL,
                                 UNTESTED)
from ladder.report.table import GroupInfo, Row, ladder_column, ladder_field, section_noise

def _f(x: float | None, fmt: str = ".2f", sign: bool = False) -> str:
    if x is None:
        return "\u2014"
    s = format(x, ("+" if sign else "") + fmt)
    return s.replace("-", "\u2212") if sign else s


def _change_cell(row: Row, prev: str | None, pooled: bool = False) -> str:
    vs = f" vs {row.parent}" if row.parent and row.parent != prev and not pooled else ""
    if row.verdict == MISSING:
        return "\u2014"
    if row.verdict == ROOT:
        return "(root)" if not pooled else ""
    if row.verdict == NO_PARENT:
        return f"{row.parent} not run" if not pooled else ""
    s = _f(row.delta, sign=True)
    ci = row.pooled_ci if pooled else row.ci
    if ci is not None:
        s += f" [{_f(ci[0], sign=True)}, {_f(ci[1], sign=True)}]"
    return s + vs


_MARKS = {GAIN: "gain", HURT: "**hurt**", NOISE: "within noise", FEW: "n<2 (no interval)",
          NO_PARENT: "", ROOT: "", MISSING: "not run", UNEQUAL: "not used (variances differ)",
          UNTESTED: "not used (untested)"}


def _mark(row: Row, pooled: bool = False) -> str:
    v = row.pooled_verdict if pooled else row.verdict
    if pooled and v in (MISSING, ROOT, NO_PARENT):
        return ""
    return _MARKS[v]


def markdown_table(rows: list[Row], metric: str, view: str = "full") -> str:
    vs = "previous milestone" if view == "milestones" else "parent"
    head = (f"| # | rung | milestone | {metric} (mean \u00b1 std, n) | change vs {vs} "
            "[95% CI] | verdict | change [95% CI, pooled] | verdict (pooled) | paper top-1 | "
            "paper change | params (M) | GFLOPs | train img/s |")
    lines = [head, "|" + "---|" * 13]
    prev = None
    for row in rows:
        r = row.rung
        if row.n:
            meas = f"{row.mean:.2f} \u00b1 {_f(row.std)} (n={row.n})"
        else:
            meas = "\u2014"
        if row.n_failed:
            meas += f" ({row.n_failed} failed)"
        name = f"`{r.name}`" + (" (side branch)" if r.side_branch else "")
        paper = "\u2014" if r.paper_top1 is None else (
            f"{r.paper_top1:.2f}" + (f" \u00b1 {r.paper_top1_std:.2f}" if r.paper_top1_std
                                     else ""))
        lines.append(" | ".join([
            f"| {row.index}", name, r.milestone or "", meas, _change_cell(row, prev), _mark(row),
            _change_cell(row, prev, pooled=True), _mark(row, pooled=True), paper,
            _f(row.paper_delta, sign=True),
            _f(row.params / 1e6 if row.params is not None else None, ".1f"),
            _f(row.gflops), _f(row.img_per_s, ".0f")]) + " |")
        prev = r.name
    return "\n".join(lines)


def _rung_list(rows: list[Row], with_delta: bool = True) -> str:
    parts = []
    for row in rows:
        s = f"`{row.rung.name}`"
        if with_delta and row.delta is not None:
            s += f" {_f(row.delta, sign=True)}"
            if row.ci is not None:
                s += f" [{_f(row.ci[0], sign=True)}, {_f(row.ci[1], sign=True)}]"
            if row.paper_delta is not None:
                s += f" (paper {_f(row.paper_delta, sign=True)})"
        parts.append(s)
    return ", ".join(parts)


def findings(rows: list[Row], info: GroupInfo) -> list[str]:
    """The summary: one sentence per finding."""
    by = {v: [r for r in rows if r.verdict == v] for v in (GAIN, HURT, NOISE, FEW, MISSING,
                                                            NO_PARENT)}
    out = []
    judged = sum(len(by[v]) for v in (GAIN, HURT, NOISE))
    if not judged:
        out.append("No change can be judged yet: no step has a completed parent and at least 2 "
                   "seeds on both sides.")
    elif by[GAIN]:
        out.append(f"The data supports a gain at {len(by[GAIN])} step(s), whose 95% interval "
                   f"lies above 0: {_rung_list(by[GAIN])}.")
    else:
        out.append("The data supports no step's gain: no change has a 95% interval above 0.")
    if by[HURT]:
        out.append(f"{len(by[HURT])} step(s) hurt, with the 95% interval below 0: "
                   f"{_rung_list(by[HURT])}.")
    elif judged:
        out.append("No step measurably hurts: no change has a 95% interval below 0.")
    if by[NOISE]:
        out.append(f"{len(by[NOISE])} step(s) are within seed noise (interval contains 0), so "
                   f"these runs can't tell their effect from zero: {_rung_list(by[NOISE])}.")
    if by[FEW]:
        out.append(f"{len(by[FEW])} step(s) can't be judged because a side has fewer than 2 "
                   f"seeds: {_rung_list(by[FEW])}.")
    if by[MISSING]:
        out.append(f"{len(by[MISSING])} rung(s) have no completed run: "
                   f"{_rung_list(by[MISSING], False)}.")
    if by[NO_PARENT]:
        out.append(f"{len(by[NO_PARENT])} rung(s) have results but no change, because the rung "
                   f"they are measured against was not run: {_rung_list(by[NO_PARENT], False)}.")
    if judged or any(r.pooled_ci for r in rows):
        out += pooled_findings(rows, section_noise(rows))
    out += split_findings(split(rows), info)
    if judged:
        out.append(f"These are {judged} separate 95% intervals with no correction for multiple "
                   "comparisons, so about one step in twenty with no real effect will still look "
                   "resolved.")
    if not info.imagenet:
        out.append(f"The paper's numbers are {reference_scope(info.ladder)}, so on "
                   f"{info.dataset} only the direction and relative size of each change compare, "
                   "not the accuracies themselves.")
    return out


CSV_FIELDS = ("dataset", "image_size", "experiment", "view", "index", "rung", "step",
              "milestone", "parent", "n", "seeds", "mean", "std", "delta", "ci_low", "ci_high",
              "df", "verdict", "pooled_ci_low", "pooled_ci_high", "pooled_df", "pooled_verdict",
              "n_failed", "paper_top1", "paper_top1_std", "paper_delta",
              "params_m", "gflops", "train_img_per_s", "data_id", "budget")


def write_csv(path: Path, rows: list[Row], info: GroupInfo, view: str) -> None:
    def c(x: float | None, nd: int = 4) -> str:
        return "" if x is None else f"{x:.{nd}f}"

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS + ladder_field(info))
        for row in rows:
            r = row.rung
            w.writerow([
                info.key[0], info.key[1] or "", info.key[2], view, row.index, r.name, r.step,
                r.milestone or "", row.parent or "", row.n,
                ";".join(str(s) for s in row.seeds), c(row.mean), c(row.std), c(row.delta),
                c(row.ci[0] if row.ci else None), c(row.ci[1] if row.ci else None),
                row.ci[2] if row.ci else "", row.verdict,
                c(row.pooled_ci[0] if row.pooled_ci else None),
                c(row.pooled_ci[1] if row.pooled_ci else None),
                row.pooled_ci[2] if row.pooled_ci else "", row.pooled_verdict, row.n_failed,
                "" if r.paper_top1 is None else r.paper_top1,
                r.paper_top1_std or "", c(row.paper_delta, 2),
                c(row.params / 1e6 if row.params is not None else None, 3), c(row.gflops, 3),
                c(row.img_per_s, 1), info.key.data_id or "", f"{info.key.budget:g}",
                *ladder_column(info)])
