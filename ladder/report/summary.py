"""The committed results in one table, generated from each results folder's own report files.

Every folder under ``results/`` (at any depth outside ``runs/``) that holds a report's
``agreement.csv`` or ``budget.csv`` gives one row per report section: the ladder, data, image
size, view and budget; how many rungs and seeds; the rank correlation of the rung means with the
paper (bootstrap interval); the ends' gap (top − bottom rung, Welch interval, and the pooled one
where the report used it); the micro-design step (the ``large_kernel`` milestone to ``micro``,
Welch interval) where the section has both rungs; and the paper's two numbers. ``roadmap.csv``
beside an ``agreement.csv`` gives the seeds, the rung means and the micro step (the report's own
change where ``micro``'s parent is the large-kernel rung, as in the milestone view, else the
Welch interval of the two rungs' means, stds and seeds, the same rule). A section that both files
of a folder describe (the budget view and the milestone view of one budget) is one row, from
``agreement.csv``. A new results folder is picked up when its report has been written.

The tables live in markdown files between marker comments, ``<!-- results-table:begin -->`` and
``<!-- results-table:end -->`` (the agreement table) or ``<!-- results-means:begin/end -->``
(the rung means per section): README.md and docs/results.md show every folder, a results
folder's README.md its own. They are rewritten in place:

    python -m ladder.report.summary            # every document with a marker
    python -m ladder.report.summary --check    # exit 1, naming the file, when one is stale

``tests/test_docs.py`` fails when a committed table differs from its sources.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ladder.report.stats import welch_from_summary
from ladder.report.text import _f

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
DOCUMENTS = (REPO / "README.md", REPO / "docs" / "results.md")
DEFAULT_LADDER = "convnext"
DASH = "\u2014"
# milestone names of the micro-design step: its start and its end
MICRO_FROM, MICRO_TO = "large_kernel", "micro"


@dataclass
class Section:
    """One report section of one results folder, as the table shows it."""

    folder: str  # relative to the results folder, '/'-separated (e.g. "demo/milestones")
    dataset: str
    image_size: str
    view: str  # full | milestones | budget
    budget: float
    ladder: str
    rungs: int
    seeds: tuple[int, int]  # fewest and most seeds of a rung
    spearman: tuple[float, float, float] | None  # value, bootstrap low, high
    gap: tuple[float, float, float] | None  # top - bottom, Welch low, high (None: an end not run)
    pooled: tuple[float, float] | None  # the pooled interval, where the report used it
    paper_gap: float | None
    micro: tuple[float, float, float] | None = None  # large_kernel -> micro, Welch low, high
    paper_micro: float | None = None
    means: list[tuple[str, float]] = field(default_factory=list)  # rung, mean (ladder order)
    experiment: str = ""  # named in the table where a folder holds several
    show_experiment: bool = False

    @property
    def key(self) -> tuple:
        return (self.dataset == "demo", self.folder, self.budget, self.view, self.experiment)


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _budget(value: str | None) -> float:
    return float(value) if value not in (None, "") else 1.0


def _section_key(row: dict[str, str], *, with_view: bool = True) -> tuple:
    """What makes a section in the report: data, image size, experiment, budget, ladder (and
    view, for the files that have one)."""
    key = (row.get("dataset"), row.get("image_size"), row.get("experiment"),
           row.get("data_id") or "", _budget(row.get("budget")),
           row.get("ladder") or DEFAULT_LADDER)
    return key + ((row.get("view"),) if with_view else ())


def _micro_step(rows: list[dict[str, str]]) -> tuple[tuple[float, float, float] | None,
                                                      float | None]:
    """(change, Welch low, high) from the large-kernel milestone to micro, and the paper's."""
    by = {r["milestone"]: r for r in rows if r.get("milestone")}
    start, end = by.get(MICRO_FROM), by.get(MICRO_TO)
    if start is None or end is None:
        return None, None
    paper = None
    if start.get("paper_top1") and end.get("paper_top1"):
        paper = float(end["paper_top1"]) - float(start["paper_top1"])
    if end.get("parent") == start["rung"] and end.get("ci_low"):
        step = (float(end["delta"]), float(end["ci_low"]), float(end["ci_high"]))
        own = _float(end.get("paper_delta"))
        return step, own if own is not None else paper
    n_a, n_b = int(end["n"] or 0), int(start["n"] or 0)
    if n_a < 2 or n_b < 2:
        return None, paper
    mean_a, mean_b = float(end["mean"]), float(start["mean"])
    low, high, _ = welch_from_summary(mean_a, float(end["std"]), n_a, mean_b,
                                      float(start["std"]), n_b)
    return (mean_a - mean_b, low, high), paper


def _from_agreement(path: Path, folder: str) -> list[Section]:
    # one roadmap.csv, or with several sections one roadmap-<section>.csv each
    roadmap = [row for csv_path in sorted(path.parent.glob("roadmap*.csv")) for row in _read(csv_path)]
    groups: dict[tuple, dict[str, dict[str, str]]] = {}
    for row in _read(path):
        groups.setdefault(_section_key(row), {})[row["quantity"]] = row
    out = []
    for key, q in groups.items():
        rows = [r for r in roadmap if _section_key(r) == key]
        measured = [r for r in rows if int(r.get("n") or 0) > 0]
        ns = [int(r["n"]) for r in measured] or [0]
        rho, welch, pooled = q.get("spearman"), q["gap_welch"], q.get("gap_pooled")
        micro, paper_micro = _micro_step(rows)
        out.append(Section(
            folder=folder, dataset=key[0], image_size=key[1], view=key[6], budget=key[4],
            ladder=key[5], rungs=int(rho["n"]) if rho and rho.get("n") else len(measured),
            seeds=(min(ns), max(ns)),
            spearman=(float(rho["value"]), float(rho["ci_low"]), float(rho["ci_high"]))
            if rho and rho.get("value") else None,
            gap=(float(welch["value"]), float(welch["ci_low"]), float(welch["ci_high"]))
            if welch.get("value") and welch.get("ci_low") else None,
            pooled=(float(pooled["ci_low"]), float(pooled["ci_high"]))
            if pooled and pooled.get("note") == "used" and pooled.get("ci_low") else None,
            experiment=key[2] or "",
            paper_gap=_float(welch.get("paper")), micro=micro, paper_micro=paper_micro,
            means=[(r["rung"], float(r["mean"])) for r in measured]))
    return out


def _from_budget(path: Path, folder: str) -> list[Section]:
    out = []
    for row in _read(path):
        rho = row.get("spearman")
        out.append(Section(
            folder=folder, dataset=row["dataset"], image_size=row["image_size"], view="budget",
            budget=_budget(row.get("budget")), ladder=row.get("ladder") or DEFAULT_LADDER,
            rungs=int(row.get("spearman_rungs") or 2),
            seeds=(min(int(row["bottom_n"]), int(row["top_n"])),
                   max(int(row["bottom_n"]), int(row["top_n"]))),
            spearman=(float(rho), float(row["spearman_low"]), float(row["spearman_high"]))
            if rho else None,
            gap=(float(row["gap"]), float(row["welch_low"]), float(row["welch_high"])),
            pooled=(float(row["pooled_low"]), float(row["pooled_high"]))
            if row.get("pooled_used") == "yes" else None,
            paper_gap=_float(row.get("paper_gap")),
            means=[(row["bottom"], float(row["bottom_mean"])),
                   (row["top"], float(row["top_mean"]))]))
    return out


def collect(results: Path = RESULTS) -> list[Section]:
    """Every section of every results folder under ``results``, in table order: real data
    before the demo's, then by folder, budget and view."""
    sections: list[Section] = []
    for dirpath, dirnames, filenames in os.walk(results):
        dirnames[:] = sorted(d for d in dirnames if d != "runs")
        here = Path(dirpath)
        folder = here.relative_to(results).as_posix()
        found = _from_agreement(here / "agreement.csv", folder) \
            if "agreement.csv" in filenames else []
        seen = {(s.dataset, s.image_size, s.budget, s.ladder) for s in found}
        if "budget.csv" in filenames:
            found += [s for s in _from_budget(here / "budget.csv", folder)
                      if (s.dataset, s.image_size, s.budget, s.ladder) not in seen]
        if len({s.experiment for s in found}) > 1:
            for s in found:
                s.show_experiment = True
        sections += found
    return sorted(sections, key=lambda s: s.key)


def _num(x: float | None) -> str:
    return _f(x, sign=True)


def _interval(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return DASH
    return f"{_num(value[0])} [{_num(value[1])}, {_num(value[2])}]"


def _budget_text(budget: float) -> str:
    return f"\u00d7{budget:g}"


def _readme_link(folder: str, results: Path, doc_dir: Path) -> str:
    """A link to the folder's README (or the nearest one above it), relative to ``doc_dir``."""
    parts = folder.split("/")
    while parts and not (results.joinpath(*parts) / "README.md").is_file():
        parts.pop()
    target = results.joinpath(*parts, "README.md") if parts else results.joinpath(folder)
    return Path(os.path.relpath(target, doc_dir)).as_posix()


def _what(s: Section) -> str:
    what = [f"{s.dataset} {s.image_size} px"]
    if s.ladder != DEFAULT_LADDER:
        what.insert(0, s.ladder)
    what += [s.view, _budget_text(s.budget)]
    if s.show_experiment:
        what.append(f"`{s.experiment}`")
    return ", ".join(what)


def _seeds(s: Section) -> str:
    lo, hi = s.seeds
    return f"{s.rungs} \u00d7 {lo}" if lo == hi else f"{s.rungs} \u00d7 {lo}-{hi}"


def _folder_cell(s: Section, results: Path, doc_dir: Path) -> str:
    return f"[`{s.folder}`]({_readme_link(s.folder, results, doc_dir)})"


def agreement_table(sections: list[Section], results: Path, doc_dir: Path) -> str:
    """The agreement table, its links relative to ``doc_dir`` (the document's folder)."""
    lines = ["| folder | section: data, view, budget | rungs \u00d7 seeds "
             "| rank correlation with the paper [bootstrap 95%] "
             "| ends' gap, top \u2212 bottom rung [Welch 95%; pooled] "
             "| micro step, large kernel \u2192 micro [Welch 95%] | paper: gap; micro step |",
             "|---|---|---|---|---|---|---|"]
    for s in sections:
        rho = _interval(s.spearman) if s.spearman else f"{DASH} ({s.rungs} rungs)"
        gap = _interval(s.gap) if s.gap else f"{DASH} (an end not run)"
        if s.pooled:
            gap += f"; pooled [{_num(s.pooled[0])}, {_num(s.pooled[1])}]"
        micro = _num(s.paper_micro) if s.micro is not None else DASH
        paper = f"{_num(s.paper_gap)}; {micro}"
        lines.append(f"| {_folder_cell(s, results, doc_dir)} | {_what(s)} | {_seeds(s)} | {rho} "
                     f"| {gap} | {_interval(s.micro)} | {paper} |")
    return "\n".join(lines)


def means_table(sections: list[Section], results: Path, doc_dir: Path) -> str:
    """Each section's top-1 means, rung by rung in ladder order (a budget view's: its ends)."""
    lines = ["| folder | section: data, view, budget | top-1 mean over seeds, rung by rung |",
             "|---|---|---|"]
    for s in sections:
        means = " \u2192 ".join(f"`{rung}` {mean:.2f}" for rung, mean in s.means)
        lines.append(f"| {_folder_cell(s, results, doc_dir)} | {_what(s)} | {means} |")
    return "\n".join(lines)


TABLES = {"results-table": agreement_table, "results-means": means_table}
NOTE = ("<!-- generated by `python -m ladder.report.summary` from each results folder's "
        "agreement.csv, roadmap.csv and budget.csv: edit those (rebuild the report), not this -->")


def in_scope(sections: list[Section], doc_dir: Path, results: Path = RESULTS) -> list[Section]:
    """The sections a document in ``doc_dir`` shows: a results folder's README its own folder's
    (and its subfolders'), any other document every folder's."""
    try:
        scope = Path(doc_dir).resolve().relative_to(Path(results).resolve()).as_posix()
    except ValueError:
        return sections
    if scope == ".":
        return sections
    return [s for s in sections if s.folder == scope or s.folder.startswith(scope + "/")]


def documents(results: Path = RESULTS) -> list[Path]:
    """README.md, docs/results.md and every results folder's README.md that has a marker."""
    marked = [p for p in sorted(Path(results).rglob("README.md"))
              if "runs" not in p.relative_to(results).parts
              and any(f"<!-- {name}:begin -->" in p.read_text() for name in TABLES)]
    return [*DOCUMENTS, *marked]


def render(text: str, doc_dir: Path, results: Path = RESULTS,
           sections: list[Section] | None = None) -> str:
    """``text`` with every marked table regenerated (for a results folder's README, the
    sections of that folder). A document must have at least one."""
    sections = in_scope(collect(results) if sections is None else sections, doc_dir, results)
    found = 0
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.S)
        body = f"{NOTE}\n{make(sections, results, doc_dir)}\n"
        text, n = pattern.subn(lambda m: m[1] + body + m[3], text)
        found += n
    if not found:
        raise ValueError(f"no <!-- results-table:begin --> ... <!-- results-table:end --> "
                         f"(or results-means) markers in the document of {doc_dir}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ladder.report.summary",
        description="Rewrite the results tables of README.md and docs/results.md from each "
                    "results folder's agreement.csv, roadmap.csv and budget.csv.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a document's table differs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder")
    parser.add_argument("documents", nargs="*", type=Path,
                        help="markdown files with the markers (default: README.md, "
                             "docs/results.md and the results folders' READMEs that have them)")
    args = parser.parse_args(argv)
    sections = collect(args.results)
    stale = []
    for doc in args.documents or documents(results=args.results):
        old = doc.read_text()
        new = render(old, doc.resolve().parent, args.results.resolve(), sections)
        if new != old:
            stale.append(doc)
            if not args.check:
                doc.write_text(new)
    for doc in stale:
        print(f"{doc}: {'stale' if args.check else 'rewritten'} "
              f"({len(sections)} sections)", file=sys.stderr if args.check else sys.stdout)
    if args.check and stale:
        print("run `python -m ladder.report.summary` to rewrite them", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
