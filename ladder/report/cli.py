"""Writing the report (roadmap.md, one CSV and PNG per group) and its command line.

Each section is one ladder's (result.json's ``ladder``; ladder/report/ladders.py): its order,
milestones, reference numbers and figure lines. ``--config-dir DIR`` finds a user's own ladder
(``DIR/ladder/<name>.yaml``, ``DIR/rung/*.yaml``), as ``train.py --config-dir`` does."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ladder.report.agreement import (AGREEMENT_FILE, agreement_findings, compute_agreement,
                                     write_agreement_csv)
from ladder.report.attribution import split, split_table
from ladder.report.duplicates import duplicate_notes, same_name_note
from ladder.report.experiments import write_loo, write_normbatch
from ladder.report.figure import plot_group
from ladder.report.ladders import ladder_of, reference_text, show_ladders
from ladder.report.load import (METRICS, SCHEMA, RunResult, _warn, group_runs, group_slug,
                                load_results, load_wandb)
from ladder.report.table import (CHANCE_FLOOR, VIEWS, _group_info, _view_rungs,
                                 below_chance_floor, build_table, ladder_names, ladder_rank)
from ladder.report.text import findings, markdown_table, write_csv
from ladder.ladders.rungs import CONF_DIR, Ladder, search_path, set_search_path

# full / milestones: the ladder (roadmap.md); loo, normbatch: the experiments beyond it;
# budget: the ends' gap and the agreement across budgets (budget.md).
ALL_VIEWS = VIEWS + ("loo", "normbatch", "budget")

def write_report(runs: list[RunResult], out_dir: str | Path, view: str = "full",
                 metric: str = "top1", source: str = "") -> list[Path]:
    """Write roadmap.md plus one (png, csv) per group into ``out_dir``; return the paths.
    ``view`` loo / normbatch write loo.md / normbatch.md instead (ladder/report/experiments.py),
    ``budget`` budget.md, budget.csv and a figure (ladder/report/budget.py).

    The ladder views also write ``agreement.csv`` beside roadmap.md (every group's agreement
    with the paper, ladder/report/agreement.py); it is not in the returned list, which keeps
    roadmap.md plus one (png, csv) per group: see :func:`agreement_path`."""
    if view not in ALL_VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(ALL_VIEWS)}")
    groups = group_runs(runs)  # warns once about runs whose budget is not > 0
    if not groups:
        raise SystemExit(f"roadmap: error: no runs with schema {SCHEMA!r} found in {source}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if view == "loo":
        return write_loo(runs, out, metric, source)
    if view == "normbatch":
        return write_normbatch(runs, out, metric, source)
    if view == "budget":
        from ladder.report.budget_text import write_budget

        return write_budget(runs, out, metric, source)
    several = len(groups) > 1
    ladders = [ladder_of(name) for name in ladder_names(groups)]
    show = show_ladders(lad.name for lad in ladders)
    md = _intro(ladders, source, len(runs), len(groups), view, metric)
    md += [
        "",
        "Top-1 is the mean \u00b1 sample std over seeds. Each change is measured against the "
        "rung's parent (in the milestone view: the previous milestone) with a 95% Welch "
        "t-interval on the difference of the seed means (df rounded down); a step is *within "
        "noise* when its interval contains 0 and can't be judged when either side has fewer "
        f"than 2 seeds. The paper columns are {_references(ladders)}, with the change vs the "
        f"same parent. Sections are split by {'ladder, ' if show else ''}what was read (the "
        "data id in result.json, or the dataset name for results that do not record one), "
        "image size, experiment and budget, and never averaged together.",
        "",
        "The pooled column gives each change a second 95% interval from the seed variance "
        "pooled over the table's rungs (one-way ANOVA error mean square, df = sum(n − 1)), "
        "used only when Bartlett's test does not reject equal variances at 0.05; its verdict "
        "says *not used* otherwise. The findings open with the agreement with the paper: the "
        "rank correlation of the rung means with the paper's top-1 (bootstrap interval over "
        "the seeds), the ends' gap, and the steps that move the paper's way; the same numbers "
        f"are in [{AGREEMENT_FILE}]({AGREEMENT_FILE}). The rules: docs/report-statistics.md "
        "in the repository.",
    ]
    note = same_name_note(groups)
    if note:
        md += ["", note]
    written, sections = [], []
    for key, gruns in groups.items():
        info = _group_info(key, gruns, show)
        rows = build_table(gruns, view, metric, info.ladder)
        stem = f"roadmap-{group_slug(key)}" if several else "roadmap"
        png, csv_path = out / f"{stem}.png", out / f"{stem}.csv"
        write_csv(csv_path, rows, info, view)
        plot_group(png, rows, info, metric, view)
        written += [png, csv_path]
        md += ["", f"## {info.title()}", "", f"![roadmap: {info.title()}]({png.name})", "",
               f"Table as CSV: [{csv_path.name}]({csv_path.name})", "",
               markdown_table(rows, metric, view)]
        variants = [r for r in gruns if r.variant]
        if variants:
            md += ["", f"{len(variants)} run(s) change their rung's architecture (leave-one-out "
                   "or norm \u00d7 batch variants) and are not in this table: "
                   "`--view loo` / `--view normbatch` report them."]
        dups = duplicate_notes([r for r in gruns if not r.variant])
        if dups:
            md += ["", "Duplicates (one rung and seed with several completed results):", ""]
            md += [f"- {d}" for d in dups]
            for d in dups:
                _warn(d)
        failed = sorted((r for r in gruns if r.status != "completed"),
                        key=lambda r: (ladder_rank(r), r.seed or 0))
        if failed:
            ok = {(r.rung, r.seed) for r in gruns if r.status == "completed"}
            md += ["", "Failed runs:", ""]
            for r in failed:
                err = (r.error or "no error recorded").strip().splitlines() or ["?"]
                later = " (a later run of this seed completed)" if (r.rung, r.seed) in ok else ""
                md.append(f"- `{r.rung}` seed {r.seed}: {err[-1][:300]}{later} "
                          f"\u2014 `{r.source}`")
        weak = below_chance_floor(gruns, metric)
        if weak:
            md += ["", f"Runs that did not learn on this budget (final {metric} under "
                   f"{CHANCE_FLOOR:g}\u00d7 chance): a budget where a rung does not learn says "
                   "nothing about the rung, so read its row and both steps next to it as "
                   "unresolved:", ""]
            md += [f"- `{r.rung}` seed {r.seed}: {r.metrics.get(metric):.2f} "
                   f"(chance {100 / r.num_classes:.1f}) \u2014 `{r.source}`" for r in weak]
        agreement = compute_agreement(rows)
        sections.append((agreement, info, view))
        md += ["", "Findings:", "", "- Agreement with the paper:"]
        md += [f"  - {s}" for s in agreement_findings(agreement)]
        md += [f"- {s}" for s in findings(rows, info)]
        if weak:
            md.append(f"- {len(weak)} run(s) ended under {CHANCE_FLOOR:g}\u00d7 chance (listed "
                      "above); the steps into and out of those rungs are not evidence.")
        parts = split(rows, info.ladder)
        if parts:
            md += ["", f"Recipe vs architecture (measured on this group, paper "
                   f"{info.ladder.reference.table}):", "", split_table(parts)]
    md_path = out / "roadmap.md"
    md_path.write_text("\n".join(md) + "\n")
    write_agreement_csv(agreement_path(md_path), sections)
    return [md_path] + written


def _intro(ladders: list[Ladder], source: str, n_runs: int, n_groups: int, view: str,
           metric: str) -> list[str]:
    """roadmap.md's title and source line: the ladder's title and the view's rows (each
    ladder's when there are several)."""
    title = (f"The {ladders[0].title}, rebuilt from the runs" if len(ladders) == 1 else
             "Several ladders, rebuilt from the runs: " + "; ".join(lad.title for lad in ladders))
    counts = [len(_view_rungs(view, lad)) for lad in ladders]
    rows = (f"{counts[0]} rows" if len(ladders) == 1 else ", ".join(
        f"{n} rows for {lad.title}" for n, lad in zip(counts, ladders)))
    return [f"# {title}", "",
            f"Source: {source} ({n_runs} run(s), {n_groups} group(s)). View: {view} ({rows}). "
            f"Metric: `metrics.{metric}`."]


def _references(ladders: list[Ladder]) -> str:
    """Where the paper columns come from: one reference, or each ladder's."""
    if len(ladders) == 1:
        return reference_text(ladders[0])
    return ("each section's ladder's reference ("
            + "; ".join(f"{lad.title}: {reference_text(lad)}" for lad in ladders) + ")")


def agreement_path(md_path: Path) -> Path:
    """The agreement CSV written beside a ladder view's roadmap.md."""
    return md_path.parent / AGREEMENT_FILE


def main(argv: Sequence[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(
        prog="roadmap.py",
        description="Rebuild a ladder's roadmap (table + figure) from its runs, beside the "
                    "reference numbers of the ladder's file (ConvNeXt: the paper's Table 10), "
                    "with seed noise; each run's ladder is the one its result.json names.")
    p.add_argument("results_dir", nargs="*",
                   help="folder(s) searched recursively for result.json; several folders are "
                        "read as one set of runs (e.g. a leave-one-out sweep and the ladder "
                        "sweep of the same budget)")
    p.add_argument("--out", help="output folder (default: the first RESULTS_DIR, or . with "
                                 "--wandb)")
    p.add_argument("--view", choices=ALL_VIEWS, default="full",
                   help="full: every rung (ConvNeXt's 17 steps); milestones: the ladder's "
                        "milestones (ConvNeXt's 7), each vs the previous; "
                        "loo: each change undone at the top beside the ladder (loo.md); "
                        "normbatch: BatchNorm vs LayerNorm across batch sizes (normbatch.md); "
                        "budget: the ends' gap, the agreement with the paper and top-1 against "
                        "optimizer steps across trainer.budget (budget.md, budget.csv, "
                        "budget.png)")
    p.add_argument("--metric", choices=METRICS, default="top1",
                   help="which entry of the result's metrics to tabulate (default: final top1)")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead")
    p.add_argument("--group", help="the W&B group (sweep) to read; required with --wandb; "
                                   "with --to-wandb, the group to log the report into "
                                   "(default: the runs' own sweep group)")
    p.add_argument("--to-wandb", metavar="[ENTITY/]PROJECT",
                   help="also log the report into W&B as one run of job_type 'report' in the "
                        "sweep's group: the table, a bar chart per rung in ladder order, the PNG")
    p.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                   help="a config directory of your own, searched before the package's conf/ "
                        "for the runs' ladders (DIR/ladder/<name>.yaml, DIR/rung/*.yaml), as "
                        "train.py --config-dir; repeatable")
    a = p.parse_args(argv)
    for d in a.config_dir:
        if not Path(d).expanduser().is_dir():
            p.error(f"--config-dir {d} is not a folder")
    if not a.config_dir:
        return _main(p, a)
    previous = [d for d in search_path() if Path(d) != CONF_DIR]
    set_search_path(a.config_dir)
    try:
        return _main(p, a)
    finally:  # a caller in the same process keeps its own search path
        set_search_path(previous)


def _main(p: argparse.ArgumentParser, a: argparse.Namespace) -> list[Path]:
    if a.wandb:
        if a.results_dir:
            p.error("give either RESULTS_DIR or --wandb, not both")
        if not a.group:
            p.error("--wandb needs --group")
        runs = load_wandb(a.wandb, a.group)
        source = f"W&B {a.wandb}, group `{a.group}`"
        out = a.out or "."
    else:
        if not a.results_dir:
            p.error("give RESULTS_DIR (or --wandb ENTITY/PROJECT --group G)")
        loaded = {Path(run.source).resolve(): run  # nested folders: each file once
                  for folder in a.results_dir for run in load_results(folder)}
        runs = list(loaded.values())
        source = " + ".join(f"`{folder}`" for folder in a.results_dir)
        out = a.out or a.results_dir[0]
    paths = write_report(runs, out, a.view, a.metric, source)
    for path in paths:
        print(path)
    if a.view in VIEWS:
        print(agreement_path(paths[0]))
    if a.to_wandb:
        _to_wandb(paths, runs, a, source)
    return paths


def _to_wandb(paths: list[Path], runs: list[RunResult], a: argparse.Namespace, source: str) -> None:
    """Log the written report into W&B; a failure is one sentence (the files stay written)."""
    from ladder.report.wandb_log import log_report

    group = a.group or _common_group(runs)
    if group is None:
        raise SystemExit("roadmap: error: --to-wandb needs --group: the runs belong to several "
                         "sweep groups (or none); the report files are written.")
    try:
        run = log_report(paths, runs, a.view, a.metric, a.to_wandb, group, source)
    except Exception as e:  # noqa: BLE001 - W&B must not turn a written report into a traceback
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise SystemExit(f"roadmap: error: could not log the report to W&B ({type(e).__name__}: "
                         f"{reason}); the report files are written.") from None
    print(f"W&B: run {run.id} (job_type report, group {group!r}) in {run.dir}")


def _common_group(runs: list[RunResult]) -> str | None:
    groups = {r.sweep_group for r in runs if r.sweep_group}
    return groups.pop() if len(groups) == 1 else None


if __name__ == "__main__":
    main()
