"""The W&B workspace of one sweep group, as code: the panels docs/wandb.md used to list for
clicking together, built from the ladder with the ``wandb-workspaces`` library.

    python -m ladder.workspace --entity E --project P --group G --dry-run ws.json   # offline
    python -m ladder.workspace --entity E --project P --group G                     # save it
    python -m ladder.workspace ... --ladder mini --config-dir my_conf               # your ladder

``--dry-run`` writes what saving would send (entity, project, display name and the view's JSON
spec) and touches no network; saving needs a W&B login and prints the workspace's URL.

What the library cannot express (each also listed in docs/wandb.md, "The workspace, as code"):

* A workspace has one runset, so every section sees the same runs: the report run (job_type
  ``report``) is let into the runset beside the training runs, or its panels would stay empty
  (``include_report=False`` leaves it and the "Report" section out).
* "Use the runs-table grouping in panels" is always on in the saved spec, so every panel is
  drawn per rung group while the runset is grouped by ``rung_label``; the step plots' one line
  per run needs the runs table ungrouped by hand.
* The scatter plot has no colour-by-key option (only x, y, z and a gradient): its points take
  the runs' colours, not a scale of ``config.rung_index``.
* The runs table's column set is the pinned columns only; how grouped rows aggregate
  ``summary.top1`` (mean, and the std beside it) is not part of the spec.
* The report's keys are those of a report over one group (``roadmap/table``...); a report over
  several groups (``roadmap/<slug>/table``) needs its panels by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ladder.ladders import rungs

MISSING_LIBRARY = ('building a W&B workspace needs the wandb-workspaces library: '
                   'pip install -e ".[workspace]"')
TRAIN_JOB, REPORT_JOB = "train", "report"  # job_types: ladder/track/tracking.py, report/wandb_log.py
STEP = "train/step"  # ladder/track/tracking.py's STEP: the per-step metrics' x axis
SEEDS_SHOWN = 10  # runs a panel draws: this many per rung group (W&B's default: 10 in all)
STEP_METRICS = ("train/loss", "train/lr")


def _library() -> tuple[Any, Any]:
    """``(wandb_workspaces.workspaces, wandb_workspaces.reports.v2)``, imported here so that
    ``import ladder.track.workspace`` works without the optional library."""
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError:
        raise ImportError(MISSING_LIBRARY) from None
    return ws, wr


def rung_labels(ladder: rungs.Ladder) -> list[str]:
    """Each rung's ``config.rung_label`` in ladder order (``"09 kernel7"``), as
    :func:`ladder.track.tracking.ladder_position` writes it."""
    return [f"{i:02d} {name}" for i, name in enumerate(ladder.names)]


def _group_colors(labels: list[str]) -> dict[str, str]:
    """One colour per rung group along viridis, in ladder order (root dark, last rung yellow)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["viridis"]
    return {label: to_hex(cmap(i / max(1, len(labels) - 1))) for i, label in enumerate(labels)}


def _ladder_markdown(ladder: rungs.Ladder, group: str) -> str:
    """The ladder as a Markdown table: the key to the rung groups."""
    lines = [f"**{ladder.title}** (`{ladder.name}`), sweep group `{group}`: runs grouped by "
             "`config.rung_label`, sorted by `config.rung_index`.", "",
             "| rung_label | step | kind | milestone |", "|---|---|---|---|"]
    for label, rung in zip(rung_labels(ladder), ladder.rungs):
        lines.append(f"| {label} | {rung.step} | {rung.kind} | {rung.milestone or ''} |")
    return "\n".join(lines)


def build_workspace(entity: str, project: str, group: str, ladder_name: str = "convnext",
                    name: str | None = None, *, include_report: bool = True,
                    report_key: str = "roadmap") -> Any:
    """The W&B workspace (a ``wandb_workspaces.workspaces.Workspace``, not saved) for the runs
    of one sweep group of ladder ``ladder_name``.

    Args:
        entity, project: where the workspace is saved (and its runs live).
        group: the sweep group (each run's W&B ``group``).
        ladder_name: the ladder the runs climb (found on :func:`ladder.ladders.rungs.search_path`).
        name: the workspace's name; default ``"<ladder title>: <group>"``.
        include_report: let the report run (job_type ``report``, ``scripts/roadmap.py
            --to-wandb``) into the runset and add its "Report" section.
        report_key: the report's key prefix (``roadmap``; ``loo`` / ``normbatch`` for those
            views).

    Raises:
        ImportError: ``wandb-workspaces`` is not installed (one sentence naming the fix).
        ladder.ladders.rungs.LadderError: no such ladder.
    """
    ws, wr = _library()
    ladder = rungs.load_ladder(ladder_name)
    labels = rung_labels(ladder)
    by_rung = wr.Config("rung_label")  # the library writes config keys as rung_label.value
    jobs = [TRAIN_JOB, REPORT_JOB] if include_report else [TRAIN_JOB]
    job_filter = (ws.Metric("JobType").isin(jobs) if include_report
                  else ws.Metric("JobType") == TRAIN_JOB)
    runset = ws.RunsetSettings(
        filters=ws.And(ws.Metric("Group") == group, job_filter),
        groupby=[ws.Config("rung_label")],
        # Sort keys are runs-table keys: a config column is "<key>.value" there, as the
        # grouping key above (the library leaves a sort key as written).
        order=[ws.Ordering(ws.Config("rung_index.value"), ascending=True)],
        group_colors=_group_colors(labels),
        pinned_columns=["config:milestone.value", "summary:top1", "summary:params",
                        "summary:gflops"],
    )
    sections = [
        ws.Section(name="Runs by rung", is_open=True, panels=[
            wr.MarkdownPanel(markdown=_ladder_markdown(ladder, group)),
            wr.BarPlot(title="final top-1 per rung (mean ± std over seeds)", metrics=["top1"],
                       groupby=by_rung, groupby_aggfunc="mean", groupby_rangefunc="stddev",
                       orientation="v", max_bars_to_show=len(labels)),
            wr.RunComparer(diff_only="split"),
        ]),
        ws.Section(name="Learning", is_open=True, panels=[
            wr.LinePlot(title="top-1 per epoch, by rung", x="epoch", y=["top1"],
                        groupby=by_rung, groupby_aggfunc="mean", groupby_rangefunc="stddev"),
            wr.LinePlot(title="val / train loss per epoch", x="epoch",
                        y=["val_loss", "train_loss"], groupby=by_rung, groupby_aggfunc="mean"),
            *[wr.LinePlot(title=f"{key} per optimizer step", x=STEP, y=[key])
              for key in STEP_METRICS],
        ]),
        ws.Section(name="Compute vs accuracy", is_open=True, panels=[
            wr.ScatterPlot(title="GFLOPs (paper scale) vs final top-1",
                           x=wr.SummaryMetric("gflops"), y=wr.SummaryMetric("top1")),
        ]),
    ]
    if include_report:
        key = report_key.rstrip("/")
        sections.insert(2, ws.Section(name="Report", is_open=True, panels=[
            # wandb.plot.bar logs its data as "<key>_table" under the "wandb/bar/v0" chart
            wr.CustomChart(query={"summaryTable": {"tableKey": f"{key}/top1_by_rung_table"}},
                           chart_name="wandb/bar/v0",
                           chart_fields={"label": "rung", "value": "top1"},
                           chart_strings={"title": "top1 per rung, ladder order"}),
            wr.MediaBrowser(title="the roadmap figure", media_keys=[f"{key}/figure"]),
            wr.WeavePanelSummaryTable(table_name=f"{key}/table"),
        ]))
    return ws.Workspace(entity=entity, project=project,
                        name=name or f"{ladder.title}: {group}",
                        sections=sections, runset_settings=runset,
                        settings=ws.WorkspaceSettings(max_runs=SEEDS_SHOWN * (len(labels) + 1)))


def workspace_spec(workspace: Any) -> dict[str, Any]:
    """What :meth:`Workspace.save` would send, without sending it: the entity, project and
    display name, and the view's spec as the JSON object it serializes."""
    # Workspace._to_model() is private but is what save() builds and posts (the view's spec
    # as model_dump_json(by_alias=True, exclude_none=True)): the one offline path to the JSON.
    view = workspace._to_model()
    spec = view.spec.model_dump_json(by_alias=True, exclude_none=True)
    return {"entity": view.entity, "project": view.project, "displayName": view.display_name,
            "spec": json.loads(spec)}


def _count_panels(spec: dict[str, Any]) -> tuple[int, int]:
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    return len(sections), sum(len(s["panels"]) for s in sections)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ladder.workspace", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entity", required=True, help="the W&B entity (user or team)")
    p.add_argument("--project", required=True, help="the W&B project of the runs")
    p.add_argument("--group", required=True, help="the sweep group (the runs' W&B group)")
    p.add_argument("--ladder", default=rungs.DEFAULT_LADDER,
                   help="the ladder the runs climb (default convnext)")
    p.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                   help="a config directory of your own (its ladder/ and rung/ files), searched "
                        "before the package's conf/; repeatable")
    p.add_argument("--name", help="the workspace's name (default '<ladder title>: <group>')")
    p.add_argument("--no-report", action="store_true",
                   help="training runs only: no report run, no Report section")
    p.add_argument("--report-key", default="roadmap",
                   help="the report's key prefix (roadmap; loo or normbatch for those views)")
    p.add_argument("--dry-run", metavar="OUT.json",
                   help="write the workspace's JSON spec to OUT.json instead of saving it "
                        "(no network)")
    a = p.parse_args(argv)
    for d in a.config_dir:
        if not Path(d).expanduser().is_dir():
            p.error(f"--config-dir {d} is not a folder")
    previous = [d for d in rungs.search_path() if Path(d) != rungs.CONF_DIR]
    rungs.set_search_path(a.config_dir)
    try:
        workspace = build_workspace(a.entity, a.project, a.group, a.ladder, a.name,
                                    include_report=not a.no_report, report_key=a.report_key)
    except (ImportError, ValueError) as err:  # the library missing, an unknown ladder
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:  # a caller in the same process keeps its own search path
        rungs.set_search_path(previous)
    if a.dry_run:
        spec = workspace_spec(workspace)
        out = Path(a.dry_run)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(spec, indent=1) + "\n")
        n_sections, n_panels = _count_panels(spec)
        print(f"{out}: workspace {spec['displayName']!r} for group {a.group!r} in "
              f"{a.entity}/{a.project}: {n_sections} sections, {n_panels} panels (not saved)")
        return 0
    try:
        workspace.save()
        url = workspace.url
    except Exception as err:  # noqa: BLE001 - no login, no network: one sentence, no traceback
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        print(f"error: could not save the workspace to W&B ({type(err).__name__}: {reason}); "
              f"--dry-run OUT.json writes it without W&B", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
