"""The documents' numbers and links: every results table between ``<!-- results-table:begin -->``
markers (README.md, docs/results.md, the results folders' READMEs) equals the one
``python -m ladder.report.summary`` generates from the folders' report files, the generator picks
a new folder up by itself, and every relative link of README.md, docs/*.md and the results
folders' READMEs points at a file (and heading) that exists."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ladder.report import summary

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
MARKDOWN = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
            *sorted(RESULTS.glob("*/README.md"))]


@pytest.mark.parametrize("doc", summary.documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_committed_tables_are_their_sources(doc):
    text = doc.read_text()
    assert "<!-- results-table:begin -->" in text or "<!-- results-means:begin -->" in text
    assert summary.render(text, doc.parent) == text, (
        f"{doc.relative_to(REPO)}: a results table differs from the folders' report files; "
        f"run `python -m ladder.report.summary`")


def test_the_readme_and_results_page_carry_every_folder():
    sections = summary.collect()
    folders = {s.folder for s in sections}
    assert {"imagenette-cpu", "budget-cpu", "imagenette-cpu64", "demo", "tricks-demo"} <= folders
    for doc in summary.DOCUMENTS:
        text = doc.read_text()
        for folder in folders:
            assert f"[`{folder}`]" in text, (doc.name, folder)


def test_the_imagenette_row_reads_agreement_and_roadmap():
    row, = [s for s in summary.collect() if s.folder == "imagenette-cpu"]
    assert (row.rungs, row.seeds, row.view, row.budget) == (7, (3, 3), "milestones", 1.0)
    assert row.spearman == pytest.approx((0.2143, 0.2143, 0.2143))
    assert row.gap == pytest.approx((-1.4352, -3.6699, 0.7994))
    assert row.pooled == pytest.approx((-2.7734, -0.0971))  # used: Bartlett does not reject
    assert row.micro == pytest.approx((-11.2984, -13.52, -9.07), abs=0.01)
    assert row.paper_gap == 5.84 and row.paper_micro == pytest.approx(1.40)
    table = summary.agreement_table([row], RESULTS, REPO)
    assert ("| 7 × 3 | +0.21 [+0.21, +0.21] | −1.44 [−3.67, +0.80]; pooled [−2.77, −0.10] "
            "| −11.30 [−13.52, −9.07] | +5.84; +1.40 |") in table
    assert "[`imagenette-cpu`](results/imagenette-cpu/README.md)" in table


def test_a_budget_view_gives_one_row_per_budget_and_none_twice():
    rows = [s for s in summary.collect() if s.folder == "budget-cpu"]
    assert [s.budget for s in rows] == [1.0, 2.0, 4.0, 8.0]
    assert rows[1].pooled is None  # Bartlett rejects at x2: the pooled interval is not used
    assert rows[3].spearman is None and rows[3].rungs == 2  # the ends only at x8
    # imagenette-cpu64: both budgets are sections of agreement.csv and rows of budget.csv;
    # one row each, from the former (whose per-section roadmap-*.csv give the seeds)
    rows = [s for s in summary.collect() if s.folder == "imagenette-cpu64"]
    assert [(s.budget, s.view, s.seeds) for s in rows] == [(1.0, "milestones", (2, 2)),
                                                          (2.0, "milestones", (2, 2))]


def test_a_folder_of_several_experiments_names_each_and_an_unrun_end_has_no_gap():
    rows = [s for s in summary.collect() if s.folder == "micro-controls-cpu"]
    assert [s.experiment for s in rows] == ["micro-base", "micro-layer_scale-0.1",
                                            "micro-warmup-60"]
    assert all(s.gap is None and s.micro is not None for s in rows)  # resnet50 not run
    table = summary.agreement_table(rows, RESULTS, REPO)
    assert "milestones, ×1, `micro-warmup-60` |" in table
    assert "| — (an end not run) |" in table
    single, = [s for s in summary.collect() if s.folder == "imagenette-cpu"]
    assert not single.show_experiment  # one experiment: the row does not name it


def test_the_micro_step_off_the_milestone_view_is_the_milestone_views_own():
    """In the full view micro's parent is layernorm: the kernel7 -> micro step is computed from
    the two rungs' means, stds and seeds, as the milestone view's own row has it."""
    full, milestones = [s for s in summary.collect() if s.folder.startswith("demo")
                        and s.folder != "demo-backbones"]
    assert (full.view, milestones.view) == ("full", "milestones")
    assert full.micro == pytest.approx(milestones.micro, abs=0.005)


def test_a_new_results_folder_is_picked_up(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "imagenette-cpu", results / "imagenette-cpu",
                    ignore=shutil.ignore_patterns("runs", "*.png"))
    new = results / "imagenette-cpu-ladder"
    new.mkdir()
    for name in ("agreement.csv", "roadmap.csv"):
        shutil.copy(RESULTS / "demo" / name, new / name)
    (results / "loo-like").mkdir()  # a folder without a report table is left out
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- results-table:begin -->\nSTALE TABLE\n<!-- results-table:end -->\nend\n")
    assert summary.main(["--results", str(results), str(doc)]) == 0
    text = doc.read_text()
    assert "STALE TABLE" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "[`imagenette-cpu-ladder`](results/imagenette-cpu-ladder)" in text
    assert "[`imagenette-cpu`](results/imagenette-cpu/README.md)" in text
    assert "loo-like" not in text
    assert summary.main(["--check", "--results", str(results), str(doc)]) == 0
    doc.write_text(text.replace("+0.21", "+0.22"))
    assert summary.main(["--check", "--results", str(results), str(doc)]) == 1


def test_a_document_without_markers_is_refused(tmp_path):
    with pytest.raises(ValueError, match="results-table:begin"):
        summary.render("no table here\n", tmp_path)


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_a_file_and_heading(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)}: links to nothing: {', '.join(broken)}"


def test_the_readme_is_short_and_says_how_to_reproduce_the_roadmap():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "## Reproduce the roadmap" in text
    section = text.split("## Reproduce the roadmap")[1].split("\n## ")[0]
    for command in ("preset=imagenette_cpu", "scripts/gpu_ladder.sh", "--jobs 8",
                    "hydra/launcher=slurm"):
        assert command in section, command
