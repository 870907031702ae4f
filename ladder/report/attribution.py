"""Recipe vs architecture (the textbook's "Attribute the Gains" exercise): how much of the climb from the
ladder's root to its top (ResNet-50 to ConvNeXt-T on ConvNeXt's) is the training recipe, and how
much the architectural steps together.

Each step's kind comes from the section's ladder file (``kind: recipe`` or ``architecture``):
on ConvNeXt's the recipe is the first step (``resnet50`` -> ``recipe``: same network, modern
recipe) and the architecture every step after it; on Bag of Tricks the model tweaks come first
and the training refinements after. Only the steps on the path from the root to the top count
(side branches such as kernel 9/11 are off the path). The steps of one kind in a row add up to
the difference of that stretch's two ends (the sum telescopes), so the sum's interval is the
Welch interval of ``end - start``, whatever rungs in between were run; summing the steps' own
intervals would count every middle rung's noise twice. A kind in several separate stretches
sums them, with the Welch-Satterthwaite interval of that sum of differences.
"""
from __future__ import annotations

from dataclasses import dataclass

from ladder.report.ladders import ladder_of, rung_words
from ladder.report.stats import (contrast_from_summary, contrast_interval, verdict,
                                 welch_from_summary, welch_interval)
from ladder.report.table import GroupInfo, Row
from ladder.ladders.rungs import Ladder, Rung

KINDS = ("recipe", "architecture")  # the parts, in the split's order (then the total)
_WORDS = {"recipe": "recipe", "architecture": "architectural"}


def main_path(ladder: Ladder | None = None) -> list[str]:
    """The rungs from the root to the top of ``ladder`` (default: ConvNeXt's, up to ConvNeXt-T),
    following the parents (side branches left out)."""
    return (ladder or ladder_of()).main_path()


def stretches(ladder: Ladder, kind: str) -> list[tuple[str, str, int]]:
    """The stretches of the main path whose steps are all of ``kind``: (start, end, steps)."""
    path, kinds = main_path(ladder), ladder.kinds
    out: list[tuple[str, str, int]] = []
    for i in range(1, len(path)):
        if kinds[path[i]] != kind:
            continue
        if out and out[-1][1] == path[i - 1]:
            start, _end, steps = out[-1]
            out[-1] = (start, path[i], steps + 1)
        else:
            out.append((path[i - 1], path[i], 1))
    return out


@dataclass
class Part:
    """One part of the split: the change from rung ``start`` to rung ``end``, or for a kind in
    several stretches the sum of each stretch's change (``segments``)."""

    name: str  # "recipe", "architecture" or "total"
    start: Rung
    end: Rung
    steps: int  # ladder steps of this part on the path
    delta: float | None  # measured: sum over the stretches of mean(end) - mean(start)
    ci: tuple[float, float, int] | None
    n: tuple[int, int]  # seeds at (start, end)
    paper_delta: float | None  # None where the reference gives no number for an end
    paper_ci: tuple[float, float, int] | None  # None where the reference gives no seed std
    segments: tuple[tuple[Rung, Rung], ...] = ()  # (start, end) per stretch; one: (start, end)
    seeds: dict[str, int] | None = None  # seeds at every stretch end, by rung

    def missing(self) -> list[str]:
        if self.seeds:
            return [name for name, n in self.seeds.items() if n == 0]
        return [r.name for r, n in ((self.start, self.n[0]), (self.end, self.n[1])) if n == 0]


def _paper_ci(end: Rung, start: Rung, seeds: int | None) -> tuple[float, float, int] | None:
    if end.paper_top1_std is None or start.paper_top1_std is None or not seeds:
        return None
    return welch_from_summary(end.paper_top1, end.paper_top1_std, seeds,
                              start.paper_top1, start.paper_top1_std, seeds)


def _part(name: str, segments: list[tuple[str, str, int]], by: dict[str, Row],
          seeds: int | None) -> Part:
    ends = [(by[a], by[b]) for a, b, _steps in segments]
    steps = sum(s for _a, _b, s in segments)
    (first, _), (_, last) = ends[0], ends[-1]
    measured = all(a.n and b.n for a, b in ends)
    delta = sum(b.mean - a.mean for a, b in ends) if measured else None
    numbers = all(r.rung.paper_top1 is not None for ab in ends for r in ab)
    paper = sum(b.rung.paper_top1 - a.rung.paper_top1 for a, b in ends) if numbers else None
    if len(ends) == 1:
        ci = welch_interval(last.values, first.values)
        paper_ci = _paper_ci(last.rung, first.rung, seeds) if numbers else None
    else:
        coef: dict[str, float] = {}
        for a, b in ends:
            coef[a.rung.name] = coef.get(a.rung.name, 0.0) - 1
            coef[b.rung.name] = coef.get(b.rung.name, 0.0) + 1
        ci = contrast_interval([(c, by[r].values) for r, c in coef.items() if c])
        stds = all(by[r].rung.paper_top1_std is not None for r in coef) and numbers and seeds
        paper_ci = contrast_from_summary(
            [(c, by[r].rung.paper_top1, by[r].rung.paper_top1_std, seeds)
             for r, c in coef.items() if c]) if stds else None
    return Part(name, first.rung, last.rung, steps, delta, ci, (first.n, last.n), paper,
                paper_ci, tuple((a.rung, b.rung) for a, b in ends),
                {r.rung.name: r.n for ab in ends for r in ab})


def split(rows: list[Row], ladder: Ladder | None = None) -> list[Part]:
    """[recipe, architecture, total] from a view's rows (``ladder``: the rows' own, default
    ConvNeXt's). Empty when the ladder's main path lacks one of the two kinds, or the view
    lacks a rung where the kind changes (the milestone view has ConvNeXt's and Bag of Tricks'
    ends of each stretch)."""
    ladder = ladder or (rows[0].ladder if rows else None) or ladder_of()
    by = {row.rung.name: row for row in rows}
    parts = {kind: stretches(ladder, kind) for kind in KINDS}
    path = main_path(ladder)
    ends = {name for segs in parts.values() for a, b, _s in segs for name in (a, b)}
    if not all(parts.values()) or not ends <= set(by):
        return []
    seeds = ladder.reference.seeds
    out = [_part(kind, parts[kind], by, seeds) for kind in KINDS]
    return out + [_part("total", [(path[0], path[-1], len(path) - 1)], by, seeds)]


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


def _what(p: Part) -> str:
    """``the recipe step alone (`a` -> `b`, same network)``, ``the 13 architectural steps
    together (...)``: which steps a part sums."""
    word = _WORDS[p.name]
    if p.steps == 1:
        same = ", same network" if p.name == "recipe" else ""
        return f"the {word} step alone (`{p.start.name}` \u2192 `{p.end.name}`{same})"
    if len(p.segments) > 1:
        legs = " + ".join(f"`{a.name}` \u2192 `{b.name}`" for a, b in p.segments)
        return (f"the {p.steps} {word} steps together ({legs}: the sum of {len(p.segments)} "
                "stretches, each the difference of its two ends)")
    return (f"the {p.steps} {word} steps together (`{p.start.name}` \u2192 `{p.end.name}`, "
            "their sum, which telescopes to the difference of the two ends)")


def _paper(p: Part, ladder: Ladder) -> str:
    """The reference's value of a part: the change with its interval, or why it has none."""
    ends = [r for a, b in (p.segments or ((p.start, p.end),)) for r in (a, b)]
    if p.paper_delta is None:
        none = dict.fromkeys(rung_words(ladder, r.name) for r in ends if r.paper_top1 is None)
        return f"\u2014, {ladder.reference.table} has no number for {' or '.join(none)}"
    if p.paper_ci is not None:
        return _value(p.paper_delta, p.paper_ci)
    bare = [rung_words(ladder, r.name) for r in ends if r.paper_top1_std is None]
    why = (f"{ladder.reference.table} gives no seed std for {' or '.join(dict.fromkeys(bare))}"
           if bare else f"{ladder.reference.table} gives no seed count")
    return f"{_f(p.paper_delta)}, no interval: {why}"


def split_findings(parts: list[Part], info: GroupInfo) -> list[str]:
    """The split as findings sentences (one per finding); none without a split."""
    if not parts:
        return []
    ladder = info.ladder
    recipe, arch, total = parts
    missing = sorted({m for p in parts for m in p.missing()}, key=list(ladder.names).index)
    if missing:
        return [f"Recipe vs architecture can't be split yet: "
                f"{', '.join(f'`{m}`' for m in missing)} has no completed run (paper: recipe "
                f"{_f(recipe.paper_delta)}, architecture {_f(arch.paper_delta)})."]
    out = [f"Recipe vs architecture: {_what(recipe)} changes top-1 by "
           f"{_value(recipe.delta, recipe.ci)} (paper {_paper(recipe, ladder)}); {_what(arch)} "
           f"by {_value(arch.delta, arch.ci)} (paper {_paper(arch, ladder)})."]
    if recipe.ci is None or arch.ci is None:
        out.append("The split has no measured intervals yet: each end needs at least 2 seeds.")
    share, paper_share = _share(recipe.delta, arch.delta), _share(recipe.paper_delta,
                                                                  arch.paper_delta)
    if share:
        paper = f"paper {paper_share}" if paper_share else "the paper's parts give no share"
        out.append(f"The recipe is {share} of the measured change from `{total.start.name}` "
                   f"to `{total.end.name}` ({paper}).")
    else:
        paper = (f"paper: the recipe is {paper_share} of it" if paper_share
                 else "the paper's parts give no share either")
        out.append(f"The recipe step{'s' if recipe.steps > 1 else ''} and the architectural "
                   f"steps move top-1 in opposite directions here, so neither is a share of the "
                   f"total ({paper}).")
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
        legs = " + ".join(f"`{a.name}` \u2192 `{b.name}`"
                          for a, b in (p.segments or ((p.start, p.end),)))
        lines.append(f"| {p.name} | {legs} | {p.steps} | "
                     f"{_value(p.delta, p.ci)} | {judged} | {p.n[0]}, {p.n[1]} | "
                     f"{_value(p.paper_delta, p.paper_ci)} |")
    return "\n".join(lines)
