"""Rebuild a ladder's roadmap (for ConvNeXt's: the paper's Table 10 and Figure 2) from its runs.

Reads every run's ``result.json`` under a results folder (or the runs of one W&B group), groups
them by their ladder (result.json's ``ladder``; ConvNeXt's for results without one), what was
read (the data id, or the dataset name for results without one), image size, experiment and
budget so that different ladders, datasets or budgets are never averaged together, and
writes for each group a table (markdown + CSV) and a figure (PNG): the measured top-1 per rung
as mean ± std over seeds, the change from the parent rung with a 95% Welch t-interval from the
seed-to-seed variation and a second one from the seed variance pooled over the group's rungs
(used when Bartlett's test does not reject equal variances), beside the paper's numbers; and
the group's agreement with the paper (rank correlation, ends' gap, steps in the paper's
direction) in the findings and in ``agreement.csv``. docs/report-statistics.md has the rules.
Each section's order, parents, milestones, reference numbers, recipe/architecture kinds and
figure target lines come from its ladder's file (``conf/ladder/<name>.yaml``, or a user's own
found with ``--config-dir DIR``).

    python scripts/roadmap.py RESULTS_DIR [--out DIR] [--view full|milestones] [--metric top1]
    python scripts/roadmap.py RESULTS_DIR --view loo|normbatch   # loo.md / normbatch.md
    python scripts/roadmap.py RESULTS_DIR --view budget          # budget.md, .csv, .png
    python scripts/roadmap.py --wandb ENTITY/PROJECT --group GROUP [--out DIR]
    python scripts/roadmap.py RESULTS_DIR --config-dir MY_CONF   # a ladder of your own

One module per job:

* :mod:`ladder.report.load`: result.json files and W&B runs -> :class:`RunResult`, grouping
  (:class:`SectionKey`).
* :mod:`ladder.report.ladders`: each section's ladder and the words taken from it.
* :mod:`ladder.report.duplicates`: several results for one rung and seed, settings compared.
* :mod:`ladder.report.stats`: t quantiles, Welch intervals, verdicts; pooled seed noise and
  Bartlett's test.
* :mod:`ladder.report.agreement`: agreement with the paper (Spearman with a bootstrap interval,
  ends' gap, directions), its findings, ``agreement.csv`` and W&B summary entries.
* :mod:`ladder.report.table`: the ladder's views (rows in ladder order, changes vs parents).
* :mod:`ladder.report.attribution`: recipe vs architecture (the textbook's "Attribute the Gains" exercise).
* :mod:`ladder.report.text`: markdown table, findings, CSV.
* :mod:`ladder.report.figure`: the roadmap figure.
* :mod:`ladder.report.loo`, :mod:`ladder.report.normbatch`: the leave-one-out and norm x batch
  views; :mod:`ladder.report.figure_views` their figures, :mod:`ladder.report.experiments`
  their files.
* :mod:`ladder.report.budget`, :mod:`ladder.report.budget_text`: the budget view (its figure
  in :mod:`ladder.report.figure_views`).
* :mod:`ladder.report.cli`: ``write_report`` and the command line.

May import :mod:`ladder.ladders`, :mod:`ladder.track` and :mod:`ladder.utils`: a report reads
results, it never trains.
"""
from ladder.report.agreement import (AGREEMENT_FIELDS, Agreement, agreement_findings,
                                     bootstrap_spearman, compute_agreement, spearman)
from ladder.report.cli import agreement_path, main, write_report
from ladder.report.figure import make_figure, plot_group
from ladder.report.load import (METRICS, RESULT_FILE, SCHEMA, RunResult, SectionKey, _cfg_get,
                                _from_record, _from_wandb_run, group_runs, group_slug,
                                load_results, load_wandb)
from ladder.report.stats import (FEW, GAIN, HURT, MISSING, NO_PARENT, NOISE, ROOT, UNEQUAL,
                                 UNTESTED, PooledNoise, bartlett, chi2_sf, pooled_interval,
                                 pooled_noise, t975, verdict, welch_interval)
from ladder.report.table import (CHANCE_FLOOR, VIEWS, GroupInfo, Row, _group_info,
                                 below_chance_floor, build_table)
from ladder.report.text import CSV_FIELDS, findings, markdown_table, write_csv

__all__ = [
    "AGREEMENT_FIELDS", "Agreement", "agreement_findings", "bootstrap_spearman",
    "compute_agreement", "spearman", "agreement_path", "UNEQUAL", "UNTESTED", "PooledNoise",
    "bartlett", "chi2_sf", "pooled_interval", "pooled_noise",
    "main", "write_report", "make_figure", "plot_group", "METRICS", "RESULT_FILE", "SCHEMA",
    "RunResult", "SectionKey", "group_runs", "group_slug", "load_results", "load_wandb", "FEW",
    "GAIN", "HURT",
    "MISSING", "NO_PARENT", "NOISE", "ROOT", "t975", "verdict", "welch_interval",
    "CHANCE_FLOOR", "VIEWS", "GroupInfo", "Row", "below_chance_floor", "build_table",
    "CSV_FIELDS", "findings", "markdown_table", "write_csv",
    "_cfg_get", "_from_record", "_from_wandb_run", "_group_info",
]
