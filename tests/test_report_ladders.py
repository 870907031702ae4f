"""The report reads each run's ladder (result.json's ``ladder``): Bag of Tricks' order, reference
numbers and recipe/architecture split, one section per ladder, and a user's own ladder found
with ``--config-dir`` (ladder/report/ladders.py, load.py, table.py, attribution.py, cli.py)."""
from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402

from ladder.ladders import rungs
from ladder.report import attribution  # noqa: E402
from ladder.report import budget as budget_view  # noqa: E402
from ladder.report.loo import LooRow, Value  # noqa: E402
from ladder.ladders.variants import Undo  # noqa: E402
from test_report import _env, write_result  # noqa: E402

TRICKS = rungs.load_ladder("bag_of_tricks")
# Bag of Tricks' three milestones, two seeds each: the ends of its two stretches (the model
# tweaks resnet50a -> resnet50d, the refinements resnet50d -> mixup).
BAG = {"resnet50a": [70.0, 70.4], "resnet50d": [72.0, 72.2], "mixup": [75.0, 75.6]}


def _write(root: Path, values: dict[str, list[float]], ladder: str | None, **extra) -> Path:
    for rung, vals in values.items():
        for seed, v in enumerate(vals):
            write_result(root, rung, seed, v, **({"ladder": ladder} if ladder else {}), **extra)
    return root


def _section(root: Path):
    (key, group), = report.group_runs(report.load_results(root)).items()
    return key, group


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _welch(a, b):
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = math.floor((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)))
    d = np.mean(a) - np.mean(b)
    half = report.t975(df) * math.sqrt(va + vb)
    return d - half, d + half, df


def _texts(fig) -> list[str]:
    """Every text of a figure: axes texts, tick labels, titles and the legends."""
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts] + [ax.get_title(), ax.get_xlabel()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return out


def _vlines(fig) -> set[float]:
    """The x of every vertical line across an axis (axvline: two points at one x)."""
    return {float(ln.get_xdata()[0]) for ax in fig.axes for ln in ax.get_lines()
            if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]
            and ln.get_linestyle() == "--"}


# ------------------------------------------------------------------------------ Bag of Tricks


def test_rows_follow_the_runs_ladder_with_its_paper_numbers(tmp_path):
    key, group = _section(_write(tmp_path / "r", BAG, "bag_of_tricks"))
    assert key.ladder == "bag_of_tricks" and {r.ladder for r in group} == {"bag_of_tricks"}
    rows = report.build_table(group, "full")
    assert [r.rung.name for r in rows] == list(TRICKS.names)  # its 7 rungs, its order
    by = {r.rung.name: r for r in rows}
    assert by["resnet50a"].rung.paper_top1 == 76.21 and by["resnet50d"].rung.paper_top1 == 77.16
    assert by["resnet50d"].verdict == report.NO_PARENT  # its parent resnet50c was not run
    assert by["cosine_decay"].paper_delta == pytest.approx(77.91 - 77.16)

    rows = report.build_table(group, "milestones")
    assert [(r.rung.name, r.parent) for r in rows] == [
        ("resnet50a", None), ("resnet50d", "resnet50a"), ("mixup", "resnet50d")]
    d = rows[1]
    assert d.delta == pytest.approx(np.mean(BAG["resnet50d"]) - np.mean(BAG["resnet50a"]))
    assert d.ci == pytest.approx(_welch(BAG["resnet50d"], BAG["resnet50a"]))
    assert d.paper_delta == pytest.approx(77.16 - 76.21)


def test_report_files_name_the_ladder_and_its_reference(tmp_path):
    root = _write(tmp_path / "r", BAG, "bag_of_tricks")
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out), "--view", "milestones"])
    md = (out / "roadmap.md").read_text()
    assert md.startswith("# The Bag of Tricks (ResNet-50), rebuilt from the runs")
    assert "View: milestones (3 rows)" in md
    assert ("The paper columns are Tables 5 and 6 of He et al., *Bag of Tricks for Image "
            "Classification with Convolutional Neural Networks* (ImageNet-1K)") in md
    assert "## Bag of Tricks (ResNet-50): demo, 32 px" in md
    assert "| `resnet50a` | resnet50a | 70.20" in md and "| 76.21 |" in md
    for convnext_only in ("Swin-T", "Table 10", "ConvNeXt", "300 epochs"):
        assert convnext_only not in md
    assert "ImageNet-1K top-1 (%) at 224 px (Tables 5 and 6)" in md  # the proxy caveat
    rows = _csv(out / "roadmap.csv")
    assert [(r["rung"], r["paper_top1"], r["ladder"]) for r in rows] == [
        ("resnet50a", "76.21", "bag_of_tricks"), ("resnet50d", "77.16", "bag_of_tricks"),
        ("mixup", "79.15", "bag_of_tricks")]
    agreement = {r["quantity"]: r for r in _csv(out / "agreement.csv")}
    assert agreement["gap_welch"]["note"] == "mixup - resnet50a"
    assert float(agreement["gap_welch"]["paper"]) == pytest.approx(79.15 - 76.21)


def test_the_split_counts_the_refinements_as_recipe_steps(tmp_path):
    assert attribution.stretches(TRICKS, "recipe") == [("resnet50d", "mixup", 3)]
    assert attribution.stretches(TRICKS, "architecture") == [("resnet50a", "resnet50d", 3)]
    key, group = _section(_write(tmp_path / "r", BAG, "bag_of_tricks"))
    for view in ("full", "milestones"):
        recipe, arch, total = attribution.split(report.build_table(group, view))
        assert (recipe.start.name, recipe.end.name, recipe.steps) == ("resnet50d", "mixup", 3)
        assert (arch.start.name, arch.end.name, arch.steps) == ("resnet50a", "resnet50d", 3)
        assert (total.start.name, total.end.name, total.steps) == ("resnet50a", "mixup", 6)
        assert recipe.ci == pytest.approx(_welch(BAG["mixup"], BAG["resnet50d"]))
        assert recipe.paper_delta == pytest.approx(79.15 - 77.16)
        assert arch.paper_delta == pytest.approx(77.16 - 76.21)
        assert recipe.paper_ci is None  # the paper gives one number per row, no std
    rows = report.build_table(group, "full")
    text = " ".join(report.findings(rows, report._group_info(key, group)))
    assert "the 3 recipe steps together (`resnet50d` \u2192 `mixup`" in text
    assert "the 3 architectural steps together (`resnet50a` \u2192 `resnet50d`" in text
    assert "no interval: Tables 5 and 6 gives no seed std for `resnet50d` or `mixup`" in text


def test_a_ladder_without_targets_draws_no_target_line(tmp_path):
    key, group = _section(_write(tmp_path / "r", BAG, "bag_of_tricks", dataset="imagenet",
                                 image_size=224))
    fig = report.make_figure(report.build_table(group), report._group_info(key, group))
    assert len(fig.axes) == 1  # ImageNet: where ConvNeXt's figure draws Swin-T
    assert _vlines(fig) == set()
    assert not any("Swin" in t for t in _texts(fig))
    assert fig._suptitle.get_text().startswith("Bag of Tricks (ResNet-50) (full view): imagenet")


def test_two_ladders_in_one_folder_are_two_sections(tmp_path):
    root = _write(tmp_path / "r", BAG, "bag_of_tricks")
    _write(root, {"resnet50": [60.0, 60.5], "recipe": [66.0, 66.2]}, None)  # old: no ladder key
    runs = report.load_results(root)
    groups = report.group_runs(runs)
    assert [k.ladder for k in groups] == ["convnext", "bag_of_tricks"]
    with pytest.raises(ValueError, match="several ladders"):
        report.build_table(runs)
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out)])
    md = (out / "roadmap.md").read_text()
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads == ["## ConvNeXt roadmap: demo, 32 px, 12 epochs (torchvision-recipe rung: 4) "
                     "\u2014 experiment 'demo'",
                     "## Bag of Tricks (ResNet-50): demo, 32 px, 12 epochs \u2014 experiment "
                     "'demo'"]
    assert "View: full (17 rows for ConvNeXt roadmap, 7 rows for Bag of Tricks (ResNet-50))" in md
    assert "Sections are split by ladder, what was read" in md
    assert ("The paper columns are each section's ladder's reference (ConvNeXt roadmap: Table "
            "10 of Liu et al., *A ConvNet for the 2020s* (ImageNet-1K, 3 seeds); Bag of Tricks "
            "(ResNet-50): Tables 5 and 6 of He et al.") in md
    convnext = _csv(out / "roadmap-demo-32px-demo.csv")
    tricks = _csv(out / "roadmap-demo-32px-demo-bag-of-tricks.csv")
    assert [r["rung"] for r in convnext] == list(rungs.RUNG_NAMES)
    assert [r["rung"] for r in tricks] == list(TRICKS.names)
    assert {r["ladder"] for r in convnext} == {"convnext"}
    assert {r["ladder"] for r in _csv(out / "agreement.csv")} == {"convnext", "bag_of_tricks"}


def test_budget_view_orders_the_rungs_by_their_ladder(tmp_path):
    root = tmp_path / "r"
    for b in (1.0, 2.0):
        _write(root / f"b{b:g}", {"mixup": [70.0 + b, 70.5 + b], "resnet50a": [71.0, 71.3]},
               "bag_of_tricks", budget=b, optimizer_steps=int(100 * b))
    (section,) = budget_view.budget_sections(report.load_results(root))
    assert section.rungs == ["resnet50a", "mixup"] and section.key.ladder == "bag_of_tricks"
    assert section.points[0].agreement.paper_gap == pytest.approx(79.15 - 76.21)
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out), "--view", "budget"])
    md = (out / "budget.md").read_text()
    assert "(Tables 5 and 6)" in md and "## Bag of Tricks (ResNet-50): demo, 32 px" in md


def test_leave_one_out_paper_changes_come_from_the_sections_ladder():
    undo = Undo(("resnet50d",), "resnet50c", "mixup", (), ())
    row = LooRow(0, undo, Value([], []), Value([], []), 0, TRICKS)
    assert row.paper == pytest.approx(77.16 - 76.87)


# ------------------------------------------------------------------------------ a user's ladder
MINE = """name: mine
title: My ladder
prefix: mine_
rungs:
  - {name: base, label: "the base", kind: root}
  - {name: wider, label: "wider", kind: architecture}
  - {name: longer, label: "longer training", kind: recipe}
milestones: [base, longer]
reference:
  source: "my notes"
  table: "Table 1"
  numbers:
    base: {top1: 50.0, std: null, gflops: 1.0}
    wider: {top1: 55.0, std: 0.5, gflops: 2.0}
targets:
  - {label: Goal A, top1: 60.0}
  - {label: Goal B, top1: 70.0}
"""


def _user_conf(tmp_path: Path) -> Path:
    """DIR/ladder/mine.yaml and DIR/rung/*.yaml: three rungs, each file's defaults naming its
    parent (``longer`` has no reference numbers)."""
    conf = tmp_path / "myconf"
    (conf / "ladder").mkdir(parents=True)
    (conf / "rung").mkdir()
    (conf / "ladder" / "mine.yaml").write_text(MINE)
    for name, parent in (("base", None), ("wider", "base"), ("longer", "wider")):
        defaults = f"  - {parent}\n" if parent else ""
        (conf / "rung" / f"{name}.yaml").write_text(
            f"# @package _global_\ndefaults:\n{defaults}  - _self_\n\nrung: {name}\n")
    return conf


MINE_RUNS = {"base": [40.0, 41.0], "wider": [45.0, 45.5], "longer": [47.0, 47.2]}


def test_a_users_ladder_is_reported_with_config_dir(tmp_path):
    conf = _user_conf(tmp_path)
    root = _write(tmp_path / "r", MINE_RUNS, "mine", dataset="imagenet", image_size=224)
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out), "--config-dir", str(conf)])
    md = (out / "roadmap.md").read_text()
    assert md.startswith("# The My ladder, rebuilt from the runs")
    assert "The paper columns are Table 1 of my notes, with the change" in md
    assert "## My ladder: imagenet, 224 px" in md
    longer = next(ln for ln in md.splitlines() if ln.startswith("| 2 | `longer`"))
    assert "| \u2014 | \u2014 |" in longer  # no paper top-1, no paper change
    rows = {r["rung"]: r for r in _csv(out / "roadmap.csv")}
    assert list(rows) == ["base", "wider", "longer"]
    assert (rows["wider"]["parent"], rows["longer"]["parent"]) == ("base", "wider")
    assert rows["longer"]["paper_top1"] == "" and rows["wider"]["paper_delta"] == "5.00"
    # the split: wider is the architecture, longer the recipe (no reference number for it)
    assert "| recipe | `wider` \u2192 `longer` | 1 |" in md
    assert "(paper \u2014, Table 1 has no number for `longer`)" in md
    assert "(the paper's parts give no share)" in md

    rungs.set_search_path([conf])
    try:
        key, group = _section(root)
        fig = report.make_figure(report.build_table(group), report._group_info(key, group))
    finally:
        rungs.set_search_path([])
    assert _vlines(fig) == {60.0, 70.0}  # every target of the ladder, with its label
    texts = _texts(fig)
    assert "Goal A 60.0" in texts and "Goal B 70.0" in texts and "targets" in texts


def test_an_unknown_ladder_is_one_sentence_naming_the_result_file(tmp_path):
    _user_conf(tmp_path)
    root = _write(tmp_path / "r", MINE_RUNS, "mine")
    first = sorted(root.rglob("result.json"))[0]
    with pytest.raises(SystemExit) as err:
        report.main([str(root), "--out", str(tmp_path / "out")])
    msg = str(err.value)
    assert msg.startswith(f"roadmap: error: {first} names ladder 'mine', which the report can't "
                          "load (no ladder 'mine'")
    assert "ladders there: bag_of_tricks, convnext" in msg and msg.endswith("--config-dir DIR.")
    assert "\n" not in msg

    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "roadmap.py"), str(root),
                           "--out", str(tmp_path / "out")], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [msg]
    with pytest.raises(SystemExit) as err:
        report.main([str(root), "--config-dir", str(tmp_path / "nowhere")])
    assert err.value.code == 2  # argparse: not a folder
