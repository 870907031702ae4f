"""Recipe vs architecture (the textbook's exercise 20.5.1): how much of the climb from ResNet-50
to ConvNeXt-T is the training recipe, and how much the architectural steps together.

The recipe step is the ladder's first step (``resnet50`` -> ``recipe``: same network, modern
recipe). The architectural steps are every step after it on the path to ConvNeXt-T (side
branches such as kernel 9/11 are off the path). Their changes add up to the difference of the
path's two ends (the sum telescopes), so the sum's interval is the Welch interval of
``top - recipe``, whatever rungs in between were run; summing the steps' own intervals would
count every middle rung's noise twice.
"""
from __future__ import annotations

from dataclasses import dataclass

from ladder.report.stats import verdict, welch_from_summary, welch_interval
from ladder.report.table import GroupInfo, Row
from ladder.rungs import RUNGS, Rung

PAPER_SEEDS = 3  # Table 10 reports mean +- std of 3 seeds


def main_path() -> list[str]:
    """The rungs from the root to ConvNeXt-T, following the parents (side branches left out)."""
    by = {r.name: r for r in RUNGS}
    path = [RUNGS[-1].name]
    while by[path[-1]].parent:
        path.append(by[path[-1]].parent)
    return path[::-1]


@dataclass
class Part:
    """One part of the split: the change from rung ``start`` to rung ``end``."""

    name: str  # "recipe", "architecture" or "total"
    start: Rung
    end: Rung
    steps: int  # ladder steps on the path from start to end
    delta: float | None  # measured mean(end) - mean(start)
    ci: tuple[float, float, int] | None
    n: tuple[int, int]  # seeds at (start, end)
    paper_delta: float
    paper_ci: tuple[float, float, int] | None  # None where the paper gives no seed std

    def missing(self) -> list[str]:
        return [r.name for r, n in ((self.start, self.n[0]), (self.end, self.n[1])) if n == 0]


def _paper_ci(end: Rung, start: Rung) -> tuple[float, float, int] | None:
    if end.paper_top1_std is None or start.paper_top1_std is None:
        return None
    return welch_from_summary(end.paper_top1, end.paper_top1_std, PAPER_SEEDS,
                              start.paper_top1, start.paper_top1_std, PAPER_SEEDS)


def split(rows: list[Row]) -> list[Part]:
    """[recipe, architecture, total] from a view's rows (any view that has the path's root, the
    recipe rung and the top: ``full`` and ``milestones`` both do)."""
    path = main_path()
    by = {row.rung.name: row for row in rows}
    parts = []
    for name, a, b in (("recipe", 0, 1), ("architecture", 1, len(path) - 1),
                       ("total", 0, len(path) - 1)):
        start, end = by[path[a]], by[path[b]]
        delta = end.mean - start.mean if start.n and end.n else None
        parts.append(Part(name, start.rung, end.rung, b - a, delta,
                          welch_interval(end.values, start.values), (start.n, end.n),
                          end.rung.paper_top1 - start.rung.paper_top1,
                          _paper_ci(end.rung, start.rung)))
    return parts


def _f(x: float | None, sign: bool = True) -> str:
    if x is None:
        return "\u2014"
    s = format(x, "+.2f" if sign else ".2f")
    return s.replace("-", "\u2212")


def _value(delta: float | None, ci: tuple[float, float, int] | None) -> str:
    s = _f(delta)
    if delta is not None and ci is not None:
        s += f" [{_f(ci[0])}, {_f(ci[1])}]"
    return s


def _share(recipe: float | None, architecture: float | None) -> str | None:
    """The recipe's share of the total, when both parts move the same way (else no share)."""
    if recipe is None or architecture is None or recipe * architecture <= 0:
        return None
    return f"{100 * recipe / (recipe + architecture):.0f}%"


def split_findings(parts: list[Part], info: GroupInfo) -> list[str]:
    """The split as findings sentences (one per finding)."""
    recipe, arch, _total = parts
    missing = sorted({m for p in parts for m in p.missing()}, key=[r.name for r in RUNGS].index)
    if missing:
        return [f"Recipe vs architecture (exercise 20.5.1) can't be split yet: "
                f"{', '.join(f'`{m}`' for m in missing)} has no completed run (paper: recipe "
                f"{_f(recipe.paper_delta)}, architecture {_f(arch.paper_delta)})."]
    no_paper_ci = ("no interval: Table 10 gives no seed std for the torchvision ResNet-50"
                   if recipe.paper_ci is None else _value(recipe.paper_delta, recipe.paper_ci))
    out = [f"Recipe vs architecture (exercise 20.5.1): the recipe step alone "
           f"(`{recipe.start.name}` \u2192 `{recipe.end.name}`, same network) changes top-1 by "
           f"{_value(recipe.delta, recipe.ci)} (paper {_f(recipe.paper_delta)}, {no_paper_ci}); "
           f"the {arch.steps} architectural steps together (`{arch.start.name}` \u2192 "
           f"`{arch.end.name}`, their sum, which telescopes to the difference of the two ends) "
           f"by {_value(arch.delta, arch.ci)} (paper {_value(arch.paper_delta, arch.paper_ci)})."]
    if recipe.ci is None or arch.ci is None:
        out.append("The split has no measured intervals yet: each end needs at least 2 seeds.")
    share, paper_share = _share(recipe.delta, arch.delta), _share(recipe.paper_delta,
                                                                  arch.paper_delta)
    if share:
        out.append(f"The recipe is {share} of the measured change from `{recipe.start.name}` "
                   f"to `{arch.end.name}` (paper {paper_share}).")
    else:
        out.append(f"The recipe step and the architectural steps move top-1 in opposite "
                   f"directions here, so neither is a share of the total (paper: the recipe is "
                   f"{paper_share} of it).")
    if info.tv_epochs:
        out.append(f"On this budget the recipe step also changes the epochs ({info.tv_epochs} "
                   f"\u2192 {info.epochs}) and the lr rule, as the presets set each recipe's "
                   "budget: it compares the two recipes at this budget, not at the paper's 90 "
                   "and 300 epochs.")
    return out


def split_table(parts: list[Part]) -> str:
    """The split as a small markdown table."""
    lines = ["| part | from \u2192 to | steps | measured change [95% CI] | verdict | n (from, to) "
             "| paper change [95% CI] |", "|---|---|---|---|---|---|---|"]
    for p in parts:
        judged = verdict(p.ci) if p.delta is not None else "not run"
        lines.append(f"| {p.name} | `{p.start.name}` \u2192 `{p.end.name}` | {p.steps} | "
                     f"{_value(p.delta, p.ci)} | {judged} | {p.n[0]}, {p.n[1]} | "
                     f"{_value(p.paper_delta, p.paper_ci)} |")
    return "\n".join(lines)
