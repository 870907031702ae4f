"""The report on the W&B dashboard: one run of job_type ``report`` in the sweep's group.

For each (dataset, image size, experiment) group of the report it logs the view's table as a
``wandb.Table`` (the CSV's rows and columns), the PNG as a ``wandb.Image`` and, for the ladder
views, a bar chart of the metric per rung in ladder order (labels ``"00 resnet50"``,
``"01 recipe"``, ... so any sort is the ladder's order); the recipe-vs-architecture split goes
into the run's summary, and so does each ladder view's agreement with the paper
(``roadmap/agreement/spearman``, ``.../spearman_lo``, ``.../gap``, ``.../gap_pooled_lo``, ...;
``roadmap/<group>/agreement/...`` with several groups; ``agreement_summary`` in
ladder/report/agreement.py lists them). Online when a key and the network are there, offline
otherwise (``ladder.track.tracking.resolve_mode``), like the training runs. The budget view logs its
one CSV (``budget/table``) and its figures instead.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ladder.report.agreement import agreement_summary, compute_agreement
from ladder.report.attribution import split
from ladder.report.load import RunResult, group_runs, group_slug
from ladder.report.table import VIEWS, build_table


def _column(cells: list[str]) -> list[Any]:
    """A CSV column with one type, as W&B tables need: int or float where every non-empty cell
    is one (empty cells None), else text."""
    for kind in (int, float):
        try:
            return [kind(c) if c != "" else None for c in cells]
        except ValueError:
            continue
    return cells


def _csv_table(path: Path):
    import wandb

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    columns = [_column([r[i] for r in rows[1:]]) for i in range(len(rows[0]))]
    return wandb.Table(columns=rows[0], data=[list(r) for r in zip(*columns)] if rows[1:] else [])


def _parse_target(target: str) -> tuple[str | None, str]:
    entity, _, project = target.rpartition("/")
    return (entity or None), project


def log_report(paths: list[Path], runs: list[RunResult], view: str, metric: str, target: str,
               group: str, source: str = "", mode: str = "auto") -> Any:
    """Log the written report (``paths``, from ``write_report``) as one W&B run; returns it
    (finished). ``target`` is ``[ENTITY/]PROJECT``."""
    import wandb

    from ladder.track.tracking import resolve_mode

    entity, project = _parse_target(target)
    out_dir = paths[0].parent
    groups = group_runs(runs, warn=False)
    several = len(groups) > 1
    run = wandb.init(
        project=project, entity=entity, group=group, job_type="report",
        name=f"roadmap-{view}", tags=["report", view],
        config={"view": view, "metric": metric, "source": source, "runs": len(runs),
                "groups": [group_slug(k) for k in groups]},
        dir=str(out_dir), mode=resolve_mode(mode), reinit="finish_previous",
        settings=wandb.Settings(init_timeout=30, silent=True, console="off"))
    try:
        if view == "budget":  # one CSV for every section, a figure per section
            logged = {"budget/table": _csv_table(out_dir / "budget.csv")}
            for png in (p for p in paths if p.suffix == ".png"):
                logged[f"budget/{png.stem}"] = wandb.Image(str(png), caption=png.stem)
            run.log(logged)
            groups = {}
        base = {"full": "roadmap", "milestones": "roadmap"}.get(view, view)
        for key, gruns in groups.items():
            slug = group_slug(key)
            stem = f"{base}-{slug}" if several else base
            prefix = f"{base}/{slug}/" if several else f"{base}/"
            logged: dict[str, Any] = {}
            csv_path, png = out_dir / f"{stem}.csv", out_dir / f"{stem}.png"
            if csv_path.exists():
                logged[prefix + "table"] = _csv_table(csv_path)
            if png.exists():
                logged[prefix + "figure"] = wandb.Image(str(png), caption=f"{view}: {slug}")
            if view in VIEWS:
                rows = build_table(gruns, view, metric)
                bars = wandb.Table(columns=["rung", metric],
                                   data=[[f"{r.index:02d} {r.rung.name}", r.mean]
                                         for r in rows if r.n])
                logged[prefix + f"{metric}_by_rung"] = wandb.plot.bar(
                    bars, "rung", metric, title=f"{metric} per rung, ladder order ({slug})")
                for part in split(rows):
                    if part.delta is not None:
                        run.summary[f"{prefix}split/{part.name}"] = part.delta
                        run.summary[f"{prefix}split/{part.name}_paper"] = part.paper_delta
                for k, v in agreement_summary(compute_agreement(rows)).items():
                    if v is not None:
                        run.summary[prefix + k] = v
            if logged:
                run.log(logged)
        md = out_dir / {"loo": "loo.md", "normbatch": "normbatch.md",
                        "budget": "budget.md"}.get(view, "roadmap.md")
        if md.exists():
            run.summary["report_markdown"] = md.read_text()[:20000]
    finally:
        run.finish()
    return run
