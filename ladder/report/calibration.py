"""The calibration view: a proxy calibration grid's runs (scripts/calibrate.py), each recipe's
settings ranked by held-out top-1 of its reference end, and the choice the grid's rule makes
(conf/calibration/<grid>.yaml says the rule; :func:`choose` applies it).

Only ``metrics.holdout_top1`` decides; the validation top-1 is shown beside it and never used.
Runs are told apart by their folder (``<recipe>-base``, ``<recipe>-<axis>-<value>``,
``<recipe>-chosen``), their setting is read from their own config.
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladder.ladders.calibration import Grid, value_text
from ladder.report.load import RunResult, _cfg_get

METRIC = "holdout_top1"


@dataclass
class Point:
    """One setting of one recipe: its runs' held-out and validation top-1 by seed."""

    name: str  # the run folder: modern-base, modern-lr-0.002, modern-chosen
    setting: dict[str, Any]
    holdout: dict[int, float]
    val: dict[int, float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.holdout.values())


def setting_of(grid: Grid, recipe: str, config: dict, base: dict) -> dict[str, Any]:
    """The grid keys where a run's config differs from ``base`` (a base run's config):
    {} for a base run, {key: value} for a grid point or the confirmation."""
    return {a.key: _cfg_get(config, a.key) for a in grid.recipe(recipe).axes
            if _cfg_get(config, a.key) != _cfg_get(base, a.key)}


def _folder(r: RunResult) -> str:
    return Path(r.source).parent.parent.name


def points(runs: list[RunResult], grid: Grid, recipe: str) -> list[Point]:
    """The recipe's grid points, base first, in the grid's axis order, the confirmation last.
    Runs without a held-out top-1 (not split, or failed) are left out."""
    mine = [r for r in runs if r.status == "completed" and _folder(r).startswith(f"{recipe}-")
            and r.metrics.get(METRIC) is not None]
    base_runs = [r for r in mine if _folder(r) == f"{recipe}-base"]
    if not base_runs:
        return []
    base_cfg = base_runs[0].config
    out: dict[str, Point] = {}
    for r in mine:
        name = _folder(r)
        p = out.setdefault(name, Point(name, setting_of(grid, recipe, r.config, base_cfg), {}, {}))
        p.holdout[r.seed] = r.metrics[METRIC]
        p.val[r.seed] = r.metrics.get("top1")
    order = [f"{recipe}-base"] + [f"{recipe}-{a.name}-{value_text(v)}"
                                  for a in grid.recipe(recipe).axes for v in a.values]
    rank = {n: i for i, n in enumerate(order + [f"{recipe}-chosen"])}
    return sorted(out.values(), key=lambda p: rank.get(p.name, len(rank)))


def margin(base: Point, grid: Grid) -> float:
    """What a change must beat: 2 x the base's sample std over its seeds, at least min_margin."""
    spread = statistics.stdev(base.holdout.values()) if len(base.holdout) > 1 else 0.0
    return max(grid.min_margin, 2 * spread)


def choose(pts: list[Point], grid: Grid, recipe: str) -> dict[str, Any]:
    """The rule: per axis, the best value beating the base by more than the margin is adopted;
    the adopted values together (``<recipe>-chosen``) are the choice if their mean is at least
    the best single adopted value's, else that value alone. Returns {"adopted": {key: value},
    "choice": {key: value} or None while the confirmation is missing, "margin": m}."""
    by = {p.name: p for p in pts}
    base = by[f"{recipe}-base"]
    m = margin(base, grid)
    adopted, best_single = {}, None
    for axis in grid.recipe(recipe).axes:
        cands = [by[n] for n in (f"{recipe}-{axis.name}-{value_text(v)}" for v in axis.values)
                 if n in by and by[n].mean - base.mean > m]
        if cands:
            top = max(cands, key=lambda p: p.mean)
            adopted.update(top.setting)
            if best_single is None or top.mean > best_single.mean:
                best_single = top
    if not adopted:
        choice: dict[str, Any] | None = {}
    elif len(adopted) == 1:
        choice = dict(adopted)
    elif f"{recipe}-chosen" in by:
        chosen = by[f"{recipe}-chosen"]
        choice = dict(adopted) if chosen.mean >= best_single.mean else dict(best_single.setting)
    else:
        choice = None
    return {"adopted": adopted, "choice": choice, "margin": m}


def _seeds(values: dict[int, float]) -> str:
    return " / ".join(f"{values[s]:.2f}" for s in sorted(values))


def write_calibration(runs: list[RunResult], out: Path, grid: Grid) -> list[Path]:
    """calibration.md and calibration.csv for every recipe of ``grid`` with a base run."""
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# Proxy calibration: grid `{grid.name}`", "",
          f"Each recipe's reference end, {grid.holdout:g} of the training images held out "
          "(class-balanced, split seed 0). Only the held-out top-1 decides; the validation "
          "top-1 is shown and never used. The rule: conf/calibration/"
          f"{grid.name}.yaml."]
    rows = []
    for r in grid.recipes:
        pts = points(runs, grid, r.recipe)
        if not pts:
            continue
        base = next(p for p in pts if p.name == f"{r.recipe}-base")
        verdict = choose(pts, grid, r.recipe)
        md += ["", f"## {r.recipe} (end: `{r.end}`)", "",
               f"Base: held-out {base.mean:.2f} over {len(base.holdout)} seed(s); a change must "
               f"beat it by more than {verdict['margin']:.2f} points.", "",
               "| run | setting | held-out top-1 (seeds) | mean | vs base | val top-1 (seeds) |",
               "|---|---|---|---|---|---|"]
        for p in pts:
            setting = ", ".join(f"`{k}={value_text(v)}`" for k, v in p.setting.items()) or "the rule"
            delta = "" if p is base else f"{p.mean - base.mean:+.2f}"
            md.append(f"| {p.name} | {setting} | {_seeds(p.holdout)} | {p.mean:.2f} | {delta} | "
                      f"{_seeds({s: v for s, v in p.val.items() if v is not None})} |")
            rows.append({"recipe": r.recipe, "run": p.name,
                         "setting": ";".join(f"{k}={value_text(v)}" for k, v in p.setting.items()),
                         "seeds": len(p.holdout), "holdout_top1": round(p.mean, 4),
                         "vs_base": "" if p is base else round(p.mean - base.mean, 4)})
        adopted = ", ".join(f"`{k}={value_text(v)}`" for k, v in verdict["adopted"].items())
        if verdict["choice"] is None:
            md += ["", f"Adopted one axis at a time: {adopted}. Not yet chosen: run the "
                   f"confirmation (`python scripts/calibrate.py --confirm {r.recipe} ...`)."]
        elif not verdict["choice"]:
            md += ["", "No change beats the base by the margin: the rule stands."]
        else:
            md += ["", "Choice: " + ", ".join(f"`{k}={value_text(v)}`"
                                               for k, v in verdict["choice"].items()) + "."]
    path_md, path_csv = out / "calibration.md", out / "calibration.csv"
    path_md.write_text("\n".join(md) + "\n")
    with open(path_csv, "w", newline="") as f:
        w = csv.DictWriter(f, ["recipe", "run", "setting", "seeds", "holdout_top1", "vs_base"])
        w.writeheader()
        w.writerows(rows)
    return [path_md, path_csv]
