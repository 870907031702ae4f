"""Writing the views of the experiments beyond the ladder: ``loo.md`` (leave-one-out at the top
beside the ladder) and ``normbatch.md`` (norm x batch size), each with a CSV and a PNG per
group, like roadmap.md for the ladder."""
from __future__ import annotations

from pathlib import Path

from ladder.report import loo, normbatch
from ladder.report.duplicates import duplicate_notes, same_name_note
from ladder.report.figure_views import loo_figure, normbatch_figure, save
from ladder.report.ladders import ladder_of, reference_tables, show_ladders
from ladder.report.load import RunResult, _warn, group_runs, group_slug
from ladder.report.table import _group_info, ladder_names


def _stem(name: str, key, several: bool) -> str:
    return f"{name}-{group_slug(key)}" if several else name


def _notes(md: list[str], groups, runs: list[RunResult] | None = None,
           by_batch: bool = False) -> None:
    """The same-name note (with ``runs`` None) or a section's duplicates, into ``md`` and, for
    duplicates, stderr."""
    if runs is None:
        note = same_name_note(groups)
        md += ["", note] if note else []
        return
    dups = duplicate_notes(runs, by_batch)
    if dups:
        md += ["", "Duplicates (one point with several completed results):", ""]
        md += [f"- {d}" for d in dups]
        for d in dups:
            _warn(d)


def write_loo(runs: list[RunResult], out: Path, metric: str, source: str) -> list[Path]:
    groups = {k: g for k, g in group_runs(runs, warn=False).items() if loo.has_loo_runs(g)}
    if not groups:
        raise SystemExit(f"roadmap: error: no leave-one-out runs (the top with one change "
                         f"undone) found in {source}; run scripts/loo.py first.")
    names = ladder_names(groups)
    show = show_ladders(names)
    table = reference_tables(ladder_of(n) for n in names)
    md = ["# Leave-one-out from the top, beside the ladder", "",
          f"Source: {source}. Metric: `metrics.{metric}`.", "",
          "Each architectural change of the ladder, undone alone at the top (generated from the "
          "rung files by `ladder/ladders/variants.py`; `python scripts/loo.py --list`). A change's value "
          "is *with it \u2212 without it*: at the top, the top minus the top with the change "
          "undone; on the ladder, the rung after its step minus the rung before (steps that "
          "change the same key, kernel 3 \u2192 5 \u2192 7, are one change). Both with a 95% "
          f"Welch interval over seeds; the paper's column is its value on the ladder in {table} "
          "(the paper ran no leave-one-out)."]
    _notes(md, groups)
    written = []
    for key, g in groups.items():
        info = _group_info(key, g, show)
        rows, skipped, others = loo.build_loo(g, metric)
        stem = _stem("loo", key, len(groups) > 1)
        png, csv_path = out / f"{stem}.png", out / f"{stem}.csv"
        loo.write_csv(csv_path, rows, info)
        save(loo_figure(rows, info, metric), png)
        written += [png, csv_path]
        md += ["", f"## {info.title()}", "", f"![leave-one-out: {info.title()}]({png.name})", "",
               f"Table as CSV: [{csv_path.name}]({csv_path.name})", "",
               loo.markdown(rows, skipped, others)]
        _notes(md, groups, g)
        md += ["", "Findings:", ""]
        md += [f"- {s}" for s in loo.findings(rows)]
    path = out / "loo.md"
    path.write_text("\n".join(md) + "\n")
    return [path] + written


def write_normbatch(runs: list[RunResult], out: Path, metric: str, source: str) -> list[Path]:
    groups = {k: (g, normbatch.build_normbatch(g, metric))
              for k, g in group_runs(runs, warn=False).items()}
    groups = {k: v for k, v in groups.items() if v[1]}
    if not groups:
        raise SystemExit(f"roadmap: error: no norm x batch runs (a rung at two or more norms or "
                         f"batch sizes) found in {source}; run `python train.py -m "
                         f"+sweep=normbatch` first.")
    md = ["# BatchNorm vs LayerNorm across batch sizes", "",
          f"Source: {source}. Metric: `metrics.{metric}`.", "",
          "Each cell is the mean \u00b1 sample std over seeds (n). BatchNorm \u2212 LayerNorm is "
          "the difference of the means at one batch with a 95% Welch interval. Everything but "
          "the norm and the batch is fixed, including the number of epochs and the lr rule "
          "(conf/sweep/normbatch.yaml: square-root scaling of AdamW's lr with the batch)."]
    _notes(md, groups)
    written = []
    show = show_ladders(ladder_names(groups))
    for key, (g, tables) in groups.items():
        info = _group_info(key, g, show)
        stem = _stem("normbatch", key, len(groups) > 1)
        csv_path = out / f"{stem}.csv"
        normbatch.write_csv(csv_path, tables, info)
        written.append(csv_path)
        md += ["", f"## {info.title()}", "", f"Table as CSV: [{csv_path.name}]({csv_path.name})"]
        _notes(md, groups, g, by_batch=True)
        for t in tables:
            png = out / (f"{stem}-{t.rung}.png" if len(tables) > 1 else f"{stem}.png")
            save(normbatch_figure(t, info, metric), png)
            written.append(png)
            md += ["", f"### {t.title}", "", f"![norm x batch: {t.title}]({png.name})", "",
                   normbatch.markdown(t, metric), "", "Findings:", ""]
            md += [f"- {s}" for s in normbatch.findings(t)]
    path = out / "normbatch.md"
    path.write_text("\n".join(md) + "\n")
    return [path] + written
