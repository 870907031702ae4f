"""The budget as an axis (``--view budget``): the ladder's ends and its agreement with the paper,
budget by budget.

Runs are taken apart as in the other views (what was read, image size, experiment, ladder), but
each section here spans every budget (``trainer.budget``) its runs were trained at. Per budget, the
section's rungs form one table (ladder/report/table.py, full view), and from it:

* the **ends' gap**: the top rung minus the bottom rung, in the order of the section's ladder
  among the rungs present at any budget of the section (with the whole ConvNeXt ladder,
  ``separate_downsampling`` - ``resnet50``),
  with its 95% Welch and pooled intervals (the pooled noise over that budget's rungs, used only
  when Bartlett's test does not reject), beside the paper's gap;
* the **rank correlation** of that budget's rung means with the paper's top-1 and its bootstrap
  interval (ladder/report/agreement.py, over the rungs between the ends);
* whether and where the top end **overtakes** the bottom end: the first budget whose gap
  interval lies above 0, under Welch and under the pooled rule, and where the point estimate
  turns positive.

Two rules (docs/report-statistics.md): a result whose budget is not > 0 is left out with a
listed warning; two completed results of one rung and seed at one budget whose settings differ
(config minus seed, paths, logging) stop the view with one sentence each, because either could
be the point on the curve.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ladder.report.agreement import Agreement, compute_agreement
from ladder.report.duplicates import diff_text, duplicates, settings_diff
from ladder.report.ladders import ladder_of, show_ladders
from ladder.report.load import RunResult, SectionKey, group_runs
from ladder.report.table import (GroupInfo, Row, _group_info, _latest_per_seed, build_table,
                                 ladder_names)


@dataclass
class BudgetPoint:
    """One budget of a section."""

    budget: float
    runs: list[RunResult]  # completed, one per rung and seed (the newest), no variants
    rows: list[Row]  # the full view's rows at this budget
    agreement: Agreement | None  # over the rows from the bottom end to the top end
    steps: dict[str, float | None]  # rung -> mean optimizer steps of its runs (None: unknown)

    def row(self, rung: str) -> Row:
        return next(r for r in self.rows if r.rung.name == rung)


@dataclass
class BudgetSection:
    """A section of the budget view: one dataset as read, image size, experiment and ladder."""

    key: SectionKey  # budget field: the smallest budget of the section (unused)
    info: GroupInfo
    rungs: list[str]  # rungs measured at some budget, in the order of the section's ladder
    points: list[BudgetPoint]
    notes: list[str] = field(default_factory=list)  # listed warnings for this section

    @property
    def bottom(self) -> str | None:
        return self.rungs[0] if len(self.rungs) > 1 else None

    @property
    def top(self) -> str | None:
        return self.rungs[-1] if len(self.rungs) > 1 else None

    @property
    def budgets(self) -> list[float]:
        return [p.budget for p in self.points]


def _budget(b: float) -> str:
    return f"\u00d7{b:g}"


def _what(r: RunResult) -> str:
    variant = " ".join(f"{k}={v}" for k, v in r.variant)
    name = f"`{r.rung}`" + (f" {variant}" if variant else "")
    return f"{name} seed {r.seed} at budget {_budget(r.budget)}"


def settings_conflicts(runs: list[RunResult]) -> list[str]:
    """One sentence per pair of completed results of one rung, seed and budget (in one section)
    trained with different settings."""
    out = []
    for g in group_runs(runs, warn=False).values():
        for rs in duplicates([r for r in g if not r.variant]):  # variants are not in this view
            newest = rs[-1]
            for r in rs[:-1]:
                keys = settings_diff(r, newest)
                if keys:
                    out.append(f"{_what(newest)} has two completed results trained with "
                               f"different settings, `{r.source}` and `{newest.source}` (they "
                               f"differ in {diff_text(r, newest, keys)}), so it is not clear "
                               "which is the point on the budget curve.")
    return out


def _drift_notes(done: dict[float, list[RunResult]], rungs: list[str]) -> list[str]:
    """Listed warnings: a rung trained at a larger budget with other settings than at its
    smallest (besides the budget), which the curve would otherwise credit to the budget; one
    sentence per rung and budget."""
    notes = []
    for rung in rungs:
        ref_runs: list[RunResult] = []
        for b in sorted(done):
            mine = sorted((r for r in done[b] if r.rung == rung), key=lambda r: r.seed or 0)
            if not ref_runs:
                ref_runs = mine
                continue
            for r in mine:
                ref = next((q for q in ref_runs if q.seed == r.seed), ref_runs[0])
                keys = settings_diff(ref, r)
                if keys:
                    notes.append(f"{_what(r)} was trained with settings that differ from "
                                 f"{_what(ref)} besides the budget ({diff_text(ref, r, keys)}; "
                                 f"`{r.source}`), so its change along the curve is not the "
                                 "budget's alone.")
                    break
    return notes


def _steps(runs: list[RunResult]) -> float | None:
    known = [r.optimizer_steps for r in runs if r.optimizer_steps is not None]
    return float(np.mean(known)) if known else None


def budget_sections(runs: list[RunResult], metric: str = "top1") -> list[BudgetSection]:
    """The budget view's sections; SystemExit with one sentence per settings conflict."""
    conflicts = settings_conflicts(runs)
    if conflicts:
        raise SystemExit("roadmap: error: " + " ".join(conflicts) + " The budget view compares "
                         "runs that differ only in their budget: move or delete one result of "
                         "each pair, or read the folders separately.")
    bases: dict[SectionKey, dict[float, list[RunResult]]] = {}
    for key, g in group_runs(runs, warn=False).items():
        bases.setdefault(key._replace(budget=1.0), {})[key.budget] = g
    show = show_ladders(ladder_names(bases))
    sections = []
    for base, by_budget in bases.items():
        ladder = ladder_of(base.ladder)
        every = [r for g in by_budget.values() for r in g]
        done = {b: [r for r in _latest_per_seed([r for r in g if not r.variant])
                    if r.metrics.get(metric) is not None] for b, g in by_budget.items()}
        present = {r.rung for g in done.values() for r in g}
        rungs = [r.name for r in ladder.rungs if r.name in present]
        points = []
        for b in sorted(by_budget):
            rows = build_table(by_budget[b], "full", metric, ladder)
            agreement = None
            if len(rungs) > 1:
                names = [r.rung.name for r in rows]
                agreement = compute_agreement(
                    rows[names.index(rungs[0]):names.index(rungs[-1]) + 1])
            steps = {name: _steps([r for r in done[b] if r.rung == name]) for name in rungs}
            points.append(BudgetPoint(b, done[b], rows, agreement, steps))
        key = base._replace(budget=min(by_budget))
        section = BudgetSection(key, _group_info(key, every, show), rungs, points)
        section.notes += _drift_notes(done, rungs)
        sections.append(section)
    return sections


# ------------------------------------------------------------------------------ crossing

def above_zero(a: Agreement | None, pooled: bool = False) -> bool | None:
    """Whether the gap's 95% interval lies above 0 (pooled: only where the pooled rule
    applies); None when there is no such interval."""
    if a is None:
        return None
    if pooled:
        if a.gap_pooled is None or a.noise is None or not a.noise.valid:
            return None
        return a.gap_pooled[0] > 0
    return None if a.gap_welch is None else a.gap_welch[0] > 0


def overtakes(section: BudgetSection, pooled: bool = False) -> float | None:
    """The first budget whose gap interval lies above 0 (Welch, or the pooled rule)."""
    return next((p.budget for p in section.points if above_zero(p.agreement, pooled)), None)


def _list(budgets: list[float]) -> str:
    return ", ".join(_budget(b) for b in budgets)


def crossing_sentences(section: BudgetSection) -> list[str]:
    """Whether and where the top end overtakes the bottom end, one sentence per rule, and
    where the point estimate turns positive."""
    if section.top is None:
        return [f"The budget view needs two rungs to compare; this section has "
                f"{len(section.rungs)} with a result ({', '.join(section.rungs) or 'none'})."]
    top, bottom = f"`{section.top}`", f"`{section.bottom}`"
    out = []
    for pooled, rule in ((False, "Welch"), (True, "pooled")):
        b = overtakes(section, pooled)
        judged = [p.budget for p in section.points if above_zero(p.agreement, pooled) is not None]
        if b is None:
            scope = ("" if len(judged) == len(section.points) else
                     f" (the {rule} rule can judge the gap at {_list(judged)} only)" if judged
                     else f" (the {rule} rule can judge the gap at no budget measured)")
            out.append(f"Under the {rule} rule, {top} does not overtake {bottom} at any budget "
                       f"measured: no budget's 95% interval for the gap lies above 0{scope}.")
            continue
        p = next(p for p in section.points if p.budget == b)
        ci = p.agreement.gap_pooled if pooled else p.agreement.gap_welch
        later = [(q.budget, above_zero(q.agreement, pooled)) for q in section.points
                 if q.budget > b]
        first = (f", already at the smallest budget where the {rule} rule can judge the gap, so "
                 "it may overtake at a smaller one" if b == judged[0] else "")
        below = [c for c, above in later if above is False]
        unjudged = [c for c, above in later if above is None]
        stays = (f"; it is not above 0 at {_list(below)}" if below else
                 f"; at {_list(unjudged)} the {rule} rule can't judge it" if unjudged else
                 "; it stays above 0 at every larger budget measured" if later else "")
        out.append(f"Under the {rule} rule, {top} overtakes {bottom} at budget {_budget(b)}: the "
                   f"first budget measured whose 95% interval for the gap lies above 0 "
                   f"({_f(p.agreement.gap)} [{_f(ci[0])}, {_f(ci[1])}]){first}{stays}.")
    gaps = [(p.budget, p.agreement.gap) for p in section.points if p.agreement.gap is not None]
    pos = [b for b, g in gaps if g > 0]
    if not gaps:
        out.append(f"The gap is measured at no budget: {top} and {bottom} never share one.")
    elif not pos:
        out.append(f"The point estimate of the gap is at or below 0 at every budget measured "
                   f"({_list([b for b, _ in gaps])}), so it does not cross 0 either.")
    else:
        again = [b for b, g in gaps if g <= 0 and b > pos[0]]
        again = f"; it is at or below 0 again at {_list(again)}" if again else ""
        if pos[0] == gaps[0][0]:
            out.append(f"The point estimate of the gap is above 0 already at the smallest budget "
                       f"where the gap is measured ({_budget(pos[0])}), so it does not cross 0 "
                       f"from below within the budgets measured; it is above 0 at "
                       f"{_list(pos)}{again}.")
        else:
            before = max(b for b, _ in gaps if b < pos[0])
            out.append(f"The point estimate of the gap crosses 0 between budget "
                       f"{_budget(before)} and {_budget(pos[0])}, and is above 0 at "
                       f"{_list(pos)}{again}.")
    return out


def _f(x: float | None, fmt: str = "+.2f") -> str:
    return "\u2014" if x is None else format(x, fmt).replace("-", "\u2212")
