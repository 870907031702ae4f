"""The roadmap table: one row per rung of a view, with changes, intervals and verdicts, in the
order, parents and milestones of the section's ladder (ladder/report/ladders.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ladder.report.duplicates import point_key
from ladder.report.ladders import ladder_of, runs_ladder
from ladder.report.load import RunResult, SectionKey
from ladder.report.stats import (MISSING, NO_PARENT, ROOT, PooledNoise, pooled_interval,
                                 pooled_noise, pooled_verdict, verdict, welch_interval)
from ladder.ladders.rungs import Ladder, Rung

VIEWS = ("full", "milestones")

@dataclass
class Row:
    """One rung of one group's table."""

    index: int
    rung: Rung
    parent: str | None  # the rung this row's change is measured against, in this view
    values: list[float]  # the metric, one per seed
    seeds: list[int | None]
    n_failed: int
    params: float | None
    gflops: float | None
    img_per_s: float | None
    paper_delta: float | None
    delta: float | None = None
    ci: tuple[float, float, int] | None = None
    verdict: str = MISSING
    pooled_ci: tuple[float, float, int] | None = None  # from the section's pooled seed std
    pooled_verdict: str = MISSING
    ladder: Ladder | None = field(default=None, repr=False)  # the section's (None: default)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    def label(self, view: str) -> str:
        """The rung's label in the figure."""
        r = self.rung
        if view == "milestones":
            return r.name if r.milestone == r.name else f"{r.milestone} ({r.name})"
        step = r.step.replace("->", "\u2192").replace(" (torchvision, 90 ep)",
                                                      " (torchvision recipe)")
        return ("\u21b3 " if r.side_branch else "") + step


def _view_rungs(view: str, ladder: Ladder | None = None) -> list[tuple[Rung, str | None]]:
    """(rung, parent in this view) in the order of ``ladder`` (default: ConvNeXt's)."""
    ladder = ladder or ladder_of()
    if view == "full":
        return [(r, r.parent) for r in ladder.rungs]
    if view == "milestones":
        names = list(ladder.milestones.values())
        by = {r.name: r for r in ladder.rungs}
        return [(by[n], names[i - 1] if i else None) for i, n in enumerate(names)]
    raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")


def _latest_per_seed(runs: list[RunResult], by_batch: bool = False) -> list[RunResult]:
    """Completed runs, one per (rung, variant, seed), and batch with ``by_batch``: the newest
    result of a point is used. The report says so for every such point, in one sentence naming
    the files (ladder/report/duplicates.py); this function only picks."""
    best: dict[tuple, RunResult] = {}
    for r in sorted((r for r in runs if r.status == "completed"), key=lambda r: r.order):
        best[point_key(r, by_batch)] = r
    return list(best.values())


def build_table(runs: list[RunResult], view: str = "full", metric: str = "top1",
                ladder: Ladder | None = None) -> list[Row]:
    """One group's rows in the order of its ladder (for ``view``), with changes and intervals.
    The ladder is the runs' own (ValueError for runs of several ladders), unless given. Runs
    whose architecture differs from their rung's (leave-one-out, norm x batch) are left out."""
    ladder = ladder or runs_ladder(runs)
    runs = [r for r in runs if not r.variant]
    done = _latest_per_seed(runs)
    by_name = {r.name: r for r in ladder.rungs}
    rows: dict[str, Row] = {}
    for i, (rung, parent) in enumerate(_view_rungs(view, ladder)):
        mine = sorted((r for r in done if r.rung == rung.name), key=lambda r: (r.seed is None,
                                                                              r.seed or 0))
        mine = [r for r in mine if r.metrics.get(metric) is not None]
        seeds_ok = {r.seed for r in mine}
        failed = [r for r in runs if r.rung == rung.name and r.status != "completed"
                  and r.seed not in seeds_ok]

        def avg(attr: str) -> float | None:
            vals = [getattr(r, attr) for r in mine if getattr(r, attr) is not None]
            return float(np.mean(vals)) if vals else None

        rows[rung.name] = Row(
            index=i, rung=rung, parent=parent, values=[r.metrics[metric] for r in mine],
            seeds=[r.seed for r in mine], n_failed=len(failed), params=avg("params"),
            gflops=avg("gflops"), img_per_s=avg("train_img_per_s"),
            paper_delta=paper_change(rung, by_name[parent] if parent else None), ladder=ladder)
    noise = section_noise(rows.values())
    for row in rows.values():
        if row.n == 0:
            row.verdict = MISSING
        elif row.parent is None:
            row.verdict = ROOT
        elif rows[row.parent].n == 0:
            row.verdict = NO_PARENT
        else:
            p = rows[row.parent]
            row.delta = row.mean - p.mean
            row.ci = welch_interval(row.values, p.values)
            row.verdict = verdict(row.ci)
            row.pooled_ci = pooled_interval(row.values, p.values, noise)
            row.pooled_verdict = pooled_verdict(row.pooled_ci, noise)
            continue
        row.pooled_verdict = row.verdict
    return list(rows.values())


def paper_change(rung: Rung, before: Rung | None) -> float | None:
    """The reference's change from ``before`` to ``rung``; None without both numbers."""
    if before is None or rung.paper_top1 is None or before.paper_top1 is None:
        return None
    return rung.paper_top1 - before.paper_top1


def section_noise(rows) -> PooledNoise | None:
    """The pooled seed noise over a section's rows (ladder/report/stats.py has the rule)."""
    return pooled_noise([row.values for row in rows])


@dataclass
class GroupInfo:
    key: SectionKey
    epochs: int | None  # modern-recipe epochs (max in the group)
    tv_epochs: int | None  # torchvision-recipe epochs, when different
    n_seeds: int
    data: dict[str, Any] | None = None  # result.json's ``data`` (what was read); None: unknown
    show_ladder: bool = False  # the report names its ladders (ladders.show_ladders)

    @property
    def dataset(self) -> str:
        return self.key[0]

    @property
    def ladder(self) -> Ladder:
        """The section's ladder."""
        return ladder_of(SectionKey(*self.key).ladder)

    @property
    def imagenet(self) -> bool:
        return self.dataset.lower() == "imagenet"

    def data_label(self) -> str:
        """The data id with its class and image counts, or the dataset name for results that
        do not record what was read."""
        d = self.data
        if not d or not d.get("id"):
            return self.dataset
        counts = [f"{d['num_classes']} classes" if d.get("num_classes") is not None else "",
                  f"{d['train_images']:,} train" if d.get("train_images") is not None else "",
                  f"{d['val_images']:,} val images" if d.get("val_images") is not None else ""]
        counts = ", ".join(c for c in counts if c)
        return f"{d['id']}" + (f" ({counts})" if counts else "")

    def title(self, budget: bool = True, ladder: bool = True) -> str:
        """The section heading: the ladder's title when the report names its ladders (and
        ``ladder`` is true), data, image size, epochs, the budget when it is not 1 (and
        ``budget`` is true), experiment."""
        key = SectionKey(*self.key)
        size = key.image_size
        t = f"{self.data_label()}, {size} px" if size else self.data_label()
        if ladder and self.show_ladder:
            t = f"{self.ladder.title}: {t}"
        if self.epochs and budget:
            t += f", {self.epochs} epochs"
        if self.tv_epochs and budget:
            t += f" (torchvision-recipe rung: {self.tv_epochs})"
        if budget and key.budget != 1:
            t += f", budget \u00d7{key.budget:g}"
        return t + f" \u2014 experiment {key.experiment!r}"


def _group_info(key: tuple, runs: list[RunResult], show_ladder: bool = False) -> GroupInfo:
    modern = [r.epochs for r in runs if r.epochs and r.recipe != "torchvision"]
    tv = [r.epochs for r in runs if r.epochs and r.recipe == "torchvision"]
    epochs = max(modern) if modern else (max(tv) if tv else None)
    tv_epochs = max(tv) if tv and max(tv) != epochs else None
    seeds = {r.seed for r in runs if r.status == "completed"}
    data = next((r.data for r in sorted(runs, key=lambda r: -r.order) if r.data_id), None)
    return GroupInfo(SectionKey(*key), epochs, tv_epochs, len(seeds), data, show_ladder)


def ladder_column(info: GroupInfo) -> list[str]:
    """The CSVs' trailing ``ladder`` cell, when the report names its ladders (else none)."""
    return [SectionKey(*info.key).ladder] if info.show_ladder else []


def ladder_field(info: GroupInfo) -> tuple[str, ...]:
    """The CSVs' trailing ``ladder`` header, when the report names its ladders (else none)."""
    return ("ladder",) if info.show_ladder else ()


CHANCE_FLOOR = 2.5  # a run under this multiple of chance accuracy did not learn


def below_chance_floor(runs: list[RunResult], metric: str = "top1") -> list[RunResult]:
    """Completed runs whose ``metric`` ends under CHANCE_FLOOR x chance (100 / classes)."""
    weak = [r for r in _latest_per_seed(runs) if r.num_classes and r.metrics.get(metric) is not None
            and r.metrics[metric] < CHANCE_FLOOR * 100 / r.num_classes]
    return sorted(weak, key=lambda r: (ladder_rank(r), r.seed or 0))


def ladder_rank(r: RunResult) -> tuple[str, int]:
    """Where a run's rung stands: its ladder, then the rung's position in it."""
    return r.ladder, ladder_of(r.ladder).index(r.rung)


def ladder_names(keys: Iterable[tuple]) -> list[str]:
    """The ladders of some section keys, each once, in report order."""
    return list(dict.fromkeys(SectionKey(*k).ladder for k in keys))
