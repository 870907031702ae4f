"""The budget view's files: budget.md, budget.csv and a figure per section
(ladder/report/budget.py computes the numbers); :func:`write_budget` is ``--view budget``."""
from __future__ import annotations

import csv
from pathlib import Path

from ladder.report.agreement import N_BOOT, Agreement
from ladder.report.budget import (BudgetPoint, BudgetSection, _budget, _f, above_zero,
                                  budget_sections, crossing_sentences, overtakes)
from ladder.report.duplicates import duplicate_notes, same_name_note
from ladder.report.figure_views import budget_figure, save
from ladder.report.load import (RunResult, _warn, bad_budget, group_runs, group_slug,
                                same_but_budget)
from ladder.report.stats import UNEQUAL, UNTESTED
from ladder.report.table import ladder_column, ladder_field

CSV_FIELDS = ("dataset", "image_size", "experiment", "data_id", "budget", "bottom", "top",
              "bottom_n", "bottom_mean", "bottom_std", "bottom_steps", "top_n", "top_mean",
              "top_std", "top_steps", "gap", "welch_low", "welch_high", "welch_df",
              "welch_above_0", "pooled_low", "pooled_high", "pooled_df", "pooled_used",
              "pooled_above_0", "spearman", "spearman_low", "spearman_high", "spearman_rungs",
              "paper_gap", "overtakes_at_welch", "overtakes_at_pooled")


def _ci(ci: tuple[float, float, int] | None) -> str:
    return "\u2014" if ci is None else f"[{_f(ci[0])}, {_f(ci[1])}] (df {ci[2]})"


def _pooled_cell(a: Agreement) -> str:
    if a.gap_pooled is None:
        return "\u2014"
    if a.noise.valid:
        return _ci(a.gap_pooled)
    why = UNTESTED if a.noise.test is None else UNEQUAL
    return f"{_ci(a.gap_pooled)}, not used ({why})"


def _measured(p: BudgetPoint, rung: str) -> str:
    row = p.row(rung)
    if not row.n:
        return "not run"
    return f"{row.mean:.2f} \u00b1 {_f(row.std, '.2f')} (n={row.n})"


def _steps(p: BudgetPoint, rung: str) -> str:
    s = p.steps.get(rung)
    return "?" if s is None else f"{s:,.0f}"


def _spearman(a: Agreement) -> str:
    if a.spearman is None:
        return f"\u2014 ({len(a.rungs)} rung(s); needs 3)"
    ci = a.spearman_ci
    interval = f" [{_f(ci[0])}, {_f(ci[1])}]" if ci else " (no interval)"
    return f"{_f(a.spearman)}{interval} ({len(a.rungs)} rungs)"


def markdown_table(s: BudgetSection, metric: str) -> str:
    lo, hi = s.bottom, s.top
    lines = [f"| budget | optimizer steps (`{lo}` / `{hi}`) | `{lo}` {metric} (mean \u00b1 std) | "
             f"`{hi}` {metric} | gap `{hi}` \u2212 `{lo}` | 95% Welch | 95% pooled | rank "
             "correlation with the paper [95% bootstrap] |", "|" + "---|" * 8]
    for p in s.points:
        a = p.agreement
        lines.append(" | ".join([
            f"| {_budget(p.budget)}", f"{_steps(p, lo)} / {_steps(p, hi)}", _measured(p, lo),
            _measured(p, hi), _f(a.gap), _ci(a.gap_welch), _pooled_cell(a), _spearman(a)])
            + " |")
    return "\n".join(lines)


def _no_steps(s: BudgetSection) -> list[str]:
    missing = [r for p in s.points for r in p.runs if r.optimizer_steps is None]
    if not missing:
        return []
    return [f"{len(missing)} run(s) record no `optimizer_steps` (result.json written before it "
            "was recorded), so the figure leaves them out; their top-1 is in the table "
            f"(first: `{missing[0].source}`)."]


def section_markdown(s: BudgetSection, runs, png: Path, metric: str) -> list[str]:
    title = s.info.title(budget=False)
    md = ["", f"## {title}", "", f"![budget: {title}]({png.name})", ""]
    if s.top is None:
        md += [f"- {t}" for t in crossing_sentences(s)]
        return md
    paper = s.points[0].agreement.paper_gap
    md += [f"Ends: `{s.top}` \u2212 `{s.bottom}`, the top and bottom rungs in ladder order among "
           f"the {len(s.rungs)} measured here ({', '.join(f'`{r}`' for r in s.rungs)}); the "
           f"paper's gap between them is {_f(paper)} ({s.info.ladder.reference.table}). "
           f"Budgets measured: "
           f"{', '.join(_budget(b) for b in s.budgets)}.", "", markdown_table(s, metric), "",
           "Findings:", ""]
    md += [f"- {t}" for t in crossing_sentences(s)]
    if any(len(p.row(r).values) == 2 for p in s.points for r in (s.bottom, s.top)):
        md.append("- With 2 seeds at an end the Welch interval can have 1 df (t = 12.7); the "
                  "pooled interval takes its df from every rung of that budget (sum of n \u2212 "
                  "1) and is used only where Bartlett's test does not reject equal variances.")
    notes = list(s.notes) + _no_steps(s)
    for key, g in group_runs(runs, warn=False).items():
        if same_but_budget(key, s.key):
            notes += duplicate_notes([r for r in g if not r.variant])
            failed = [r for r in g if r.status != "completed"]
            notes += [f"`{r.rung}` seed {r.seed} at budget {_budget(r.budget)} failed and is "
                      f"not in the table (`{r.source}`)." for r in failed]
    variants = [r for r in runs if r.variant and same_but_budget(r.section_key, s.key)]
    if variants:
        notes.append(f"{len(variants)} run(s) change their rung's architecture (leave-one-out or "
                     "norm \u00d7 batch variants) and are not in this view.")
    if notes:
        md += ["", "Warnings:", ""] + [f"- {n}" for n in notes]
        for n in notes:
            _warn(n)
    return md


def _c(x, nd: int = 4) -> str:
    return "" if x is None else f"{x:.{nd}f}"


def _yes(x: bool | None) -> str:
    return "" if x is None else ("yes" if x else "no")


def csv_rows(s: BudgetSection) -> list[list]:
    out = []
    if s.top is None:
        return out
    w, pl = overtakes(s), overtakes(s, pooled=True)
    for p in s.points:
        a, lo, hi = p.agreement, p.row(s.bottom), p.row(s.top)
        noise = a.noise
        out.append([
            s.key.dataset, s.key.image_size or "", s.key.experiment, s.key.data_id or "",
            f"{p.budget:g}", s.bottom, s.top, lo.n, _c(lo.mean), _c(lo.std),
            _c(p.steps.get(s.bottom), 1), hi.n, _c(hi.mean), _c(hi.std), _c(p.steps.get(s.top), 1),
            _c(a.gap), _c(a.gap_welch and a.gap_welch[0]), _c(a.gap_welch and a.gap_welch[1]),
            a.gap_welch[2] if a.gap_welch else "", _yes(above_zero(a)),
            _c(a.gap_pooled and a.gap_pooled[0]), _c(a.gap_pooled and a.gap_pooled[1]),
            a.gap_pooled[2] if a.gap_pooled else "",
            "" if noise is None else ("yes" if noise.valid else f"no: {noise.reason}"),
            _yes(above_zero(a, pooled=True)), _c(a.spearman),
            _c(a.spearman_ci and a.spearman_ci[0]), _c(a.spearman_ci and a.spearman_ci[1]),
            len(a.rungs), _c(a.paper_gap, 2), "" if w is None else f"{w:g}",
            "" if pl is None else f"{pl:g}", *ladder_column(s.info)])
    return out


def write_files(sections: list[BudgetSection], runs: list, out: Path, metric: str,
                source: str, bad: list[str]) -> list[Path]:
    """budget.md, budget.csv (every section) and the figures; returns their paths. ``runs``:
    every run read (failed ones, duplicates and variants are listed from it)."""
    md = ["# The budget as an axis: the ladder's ends across training budgets", "",
          f"Source: {source}. Metric: `metrics.{metric}`.", "",
          "Each budget (`trainer.budget`: one switch that multiplies every rung's epochs "
          "alike) is its own table of the ladder. Per budget: the ends' gap (top rung \u2212 "
          "bottom rung in ladder order among the rungs measured) with a 95% Welch interval and "
          "a 95% interval from the seed variance pooled over that budget's rungs (used only "
          "when Bartlett's test does not reject equal variances), and the rank correlation of "
          f"the rung means with the paper's top-1 with a bootstrap interval ({N_BOOT} "
          "resamples of each rung's seeds). The top end *overtakes* the bottom end at the "
          "first budget whose interval for the gap lies above 0. The figure draws each rung's "
          "top-1 against the optimizer steps it took (log axis): seed means \u00b1 1 std, "
          "seeds as dots. The rules: docs/report-statistics.md in the repository."]
    note = same_name_note(s.key for s in sections)
    if note:
        md += ["", note]
    if bad:
        md += ["", "Left out:", ""] + [f"- {b}." for b in bad]
    several = len(sections) > 1
    written, rows = [], []
    for s in sections:
        stem = f"budget-{group_slug(s.key._replace(budget=1.0))}" if several else "budget"
        png = out / f"{stem}.png"
        save(budget_figure(s, metric), png)
        written.append(png)
        md += section_markdown(s, runs, png, metric)
        rows += csv_rows(s)
    csv_path = out / "budget.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS + (ladder_field(sections[0].info) if sections else ()))
        w.writerows(rows)
    md_path = out / "budget.md"
    md_path.write_text("\n".join(md) + "\n")
    return [md_path, csv_path] + written


def write_budget(runs: list[RunResult], out: Path, metric: str, source: str) -> list[Path]:
    """budget.md, budget.csv and one figure per section (budget.png when there is one)."""
    bad = [s for s in (bad_budget(r) for r in runs) if s]
    sections = budget_sections(runs, metric)
    if not sections:
        raise SystemExit(f"roadmap: error: no runs with a budget > 0 found in {source}.")
    return write_files(sections, runs, out, metric, source, bad)
