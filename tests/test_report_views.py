"""Leave-one-out and norm x batch: the generated changes (ladder/ladders/variants.py) and the report's
two views (ladder/report/loo.py, normbatch.py), on result files written by the test."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402

from ladder.ladders import variants
from ladder.ladders.rungs import RUNGS, resolve  # noqa: E402
from test_report import write_result  # noqa: E402

TOP = RUNGS[-1].name
TEN = {"num_classes": 10}


def _welch(a, b):
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = math.floor((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)))
    d = np.mean(a) - np.mean(b)
    half = report.t975(df) * math.sqrt(va + vb)
    return d, d - half, d + half


def _model(rung: str, **changes) -> dict:
    return {**dict(variants.rung_axes(rung)), "width_multiplier": 0.25, **changes}


def _read(path: Path, key: str) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}


# ----------------------------------------------------------------------------- the changes


def test_leave_one_out_is_generated_from_the_rung_files():
    from ladder.ladders.compose import config_diff

    undos, skipped = variants.leave_one_out()
    names = [u.name for u in undos]
    assert names == ["undo_stage_ratio", "undo_patchify", "undo_depthwise_conv", "undo_width",
                     "undo_inverted_bottleneck", "undo_move_up", "undo_kernel5+kernel7",
                     "undo_gelu", "undo_fewer_activations", "undo_fewer_norms", "undo_layernorm",
                     "undo_separate_downsampling"]
    assert [r for r, _ in skipped] == ["recipe"] and "recipe.*" in skipped[0][1]
    by = {u.name: u for u in undos}
    # two steps on one key are one change, undone to the value before the first of them
    k = by["undo_kernel5+kernel7"]
    assert (k.before, k.after, dict(k.changes), dict(k.top_values)) == (
        "move_up", "kernel7", {"kernel_size": 3}, {"kernel_size": 7})
    assert by["undo_layernorm"].overrides() == ["model.norm=batchnorm"]
    assert by["undo_stage_ratio"].overrides() == ["model.depths=[3,4,6,3]"]
    assert by["undo_layernorm"].label == "norm layernorm \u2192 batchnorm"
    # every change undoes exactly what its step(s) changed, to the value before them
    for u in undos:
        diff = config_diff(u.before, u.after)
        assert {k[len("model."):] for k in diff if k != "rung"} == set(dict(u.changes))
        for key, value in u.changes:
            before = diff[f"model.{key}"][0]
            assert (tuple(before) if isinstance(before, list) else before) == value
    # the one combination the schema refuses, with its reason; all others pass it
    refused = [u for u in undos if u.refused]
    assert [u.name for u in refused] == ["undo_move_up"]
    assert "activations_per_block='one' needs model.spatial_position='first'" in refused[0].refused
    assert set(variants.axes()) == {k for u in undos for k, _ in u.changes}


def test_variant_of_compares_only_the_ladders_axes():
    assert variants.variant_of(TOP, _model(TOP)) == ()
    assert variants.variant_of(TOP, _model(TOP, norm="batchnorm")) == (("norm", "batchnorm"),)
    assert variants.variant_of(TOP, {"kernel_size": 3}) == (("kernel_size", 3),)  # partial config
    assert variants.variant_of(TOP, {"depths": [3, 4, 6, 3]}) == (("depths", (3, 4, 6, 3)),)
    assert variants.variant_of(TOP, {"width_multiplier": 0.5}) == ()  # a budget key, not an axis
    assert variants.variant_of("layernorm", _model(TOP)) == (("downsample", "separate"),)


# ----------------------------------------------------------------------------- leave-one-out view

TOP_VALUES = [80.0, 81.0, 82.0]
WITHOUT_LN = [70.0, 71.0, 73.0]  # undo LN -> BN: top - without = +9.67
LADDER = {"fewer_norms": [60.0, 62.0], "layernorm": [66.0, 65.0, 67.0]}  # +5.0 on the ladder


@pytest.fixture
def loo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "loo"
    for seed, v in enumerate(TOP_VALUES):
        write_result(root, TOP, seed, v, config={"model": _model(TOP), "data": TEN})
    for seed, v in enumerate(WITHOUT_LN):
        d = write_result(root / "undo_layernorm", TOP, seed, v,
                         config={"model": _model(TOP, norm="batchnorm"), "data": TEN})
        assert d.exists()
    write_result(root / "undo_gelu", TOP, 0, 79.0,
                 config={"model": _model(TOP, activation="relu"), "data": TEN})
    write_result(root / "undo_gelu", TOP, 1, status="failed", error="boom",
                 config={"model": _model(TOP, activation="relu"), "data": TEN})
    for seed, v in enumerate([79.0, 80.0]):  # a list-valued change
        write_result(root / "undo_stage_ratio", TOP, seed, v,
                     config={"model": _model(TOP, depths=[3, 4, 6, 3]), "data": TEN})
    write_result(root / "odd", TOP, 0, 50.0,  # two changes at once: matches no single change
                 config={"model": _model(TOP, activation="relu", kernel_size=3), "data": TEN})
    for rung, vals in LADDER.items():
        for seed, v in enumerate(vals):
            write_result(root, rung, seed, v, config={"model": _model(rung), "data": TEN})
    return root


def test_loo_view_numbers(loo_dir, tmp_path):
    out = tmp_path / "out"
    paths = report.main([str(loo_dir), "--out", str(out), "--view", "loo"])
    assert {p.name for p in paths} == {"loo.md", "loo.png", "loo.csv"}
    rows = _read(out / "loo.csv", "change")
    assert len(rows) == 12
    ln = rows["undo_layernorm"]
    d, lo, hi = _welch(TOP_VALUES, WITHOUT_LN)
    assert float(ln["top_delta"]) == pytest.approx(d, abs=1e-4)
    assert (float(ln["top_ci_low"]), float(ln["top_ci_high"])) == pytest.approx((lo, hi), abs=1e-4)
    assert ln["top_verdict"] == "gain" and (ln["top_n"], ln["without_n"]) == ("3", "3")
    d, lo, hi = _welch(LADDER["layernorm"], LADDER["fewer_norms"])
    assert float(ln["ladder_delta"]) == pytest.approx(d, abs=1e-4) == pytest.approx(5.0)
    assert float(ln["ladder_ci_low"]) == pytest.approx(lo, abs=1e-4)
    assert ln["ladder_verdict"] == ("gain" if lo > 0 else "within noise")
    assert float(ln["paper_ladder_delta"]) == pytest.approx(
        resolve("layernorm").paper_top1 - resolve("fewer_norms").paper_top1, abs=1e-3)
    gelu = rows["undo_gelu"]  # one completed seed, one failed
    assert float(gelu["top_delta"]) == pytest.approx(81.0 - 79.0)
    assert gelu["top_verdict"] == "n<2" and gelu["ladder_verdict"] == "missing"
    assert float(rows["undo_stage_ratio"]["top_delta"]) == pytest.approx(81.0 - 79.5)
    assert rows["undo_move_up"]["refused"].startswith("model.activations_per_block='one'")
    assert rows["undo_width"]["top_delta"] == "" and rows["undo_width"]["top_verdict"] == "missing"
    md = (out / "loo.md").read_text()
    line = next(ln for ln in md.splitlines() if "norm layernorm \u2192 batchnorm" in ln)
    assert "| gain |" in line and "(n=3, 3)" in line
    assert "(1 failed)" in next(ln for ln in md.splitlines() if "activation gelu" in ln)
    assert "- `undo_move_up` (spatial_position first \u2192 middle): model.activations_per_block" in md
    assert "- `recipe`: changes recipe.*" in md
    assert "1 run(s) change the architecture in a way that matches no single change" in md
    assert "still add accuracy at the top" in md


def test_loo_view_reads_the_ladder_from_a_second_folder(loo_dir, tmp_path):
    """A leave-one-out sweep run apart from the ladder sweep of the same budget: the report reads
    both folders as one set of runs (a run found through both paths counts once)."""
    ladder_dir = tmp_path / "ladder"
    ladder_dir.mkdir()
    for rung in LADDER:
        for d in sorted(loo_dir.glob(f"demo/demo/{rung}-seed*")):
            d.rename(ladder_dir / d.name)
    assert len(list(ladder_dir.iterdir())) == 5
    alone = report.main([str(loo_dir), "--out", str(tmp_path / "alone"), "--view", "loo"])
    assert _read(alone[-1].with_name("loo.csv"), "change")["undo_layernorm"]["ladder_delta"] == ""
    report.main([str(loo_dir), str(ladder_dir), str(tmp_path), "--out", str(tmp_path / "both"),
                 "--view", "loo"])
    ln = _read(tmp_path / "both" / "loo.csv", "change")["undo_layernorm"]
    assert float(ln["ladder_delta"]) == pytest.approx(5.0)
    assert (ln["top_n"], ln["without_n"]) == ("3", "3")  # nested folder, not double-counted
    assert "`" + str(ladder_dir) + "`" in (tmp_path / "both" / "loo.md").read_text()


def test_ladder_views_leave_the_variants_out(loo_dir, tmp_path):
    report.main([str(loo_dir), "--out", str(tmp_path / "full")])
    rows = _read(tmp_path / "full" / "roadmap.csv", "rung")
    assert rows[TOP]["n"] == "3"  # not the 8 variant runs of the same rung
    assert float(rows[TOP]["mean"]) == pytest.approx(81.0)
    md = (tmp_path / "full" / "roadmap.md").read_text()
    assert "8 run(s) change their rung's architecture" in md and "`--view loo`" in md


def test_loo_figure_has_an_axis_through_zero(loo_dir):
    runs = report.load_results(loo_dir)
    (key, group), = report.group_runs(runs).items()
    from ladder.report.figure_views import loo_figure
    from ladder.report.loo import build_loo

    rows, _, _ = build_loo(group)
    fig = loo_figure(rows, report._group_info(key, group))
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    d, _, ci_hi = _welch(TOP_VALUES, WITHOUT_LN)
    assert lo < 0 < hi and hi >= ci_hi and lo == pytest.approx(-hi)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("depths") and "norm layernorm \u2192 batchnorm" in labels
    assert any("refused" in t.get_text() for t in ax.texts)


def test_no_loo_runs_is_a_clear_error(tmp_path):
    write_result(tmp_path / "r", TOP, 0, 80.0, config={"model": _model(TOP)})
    with pytest.raises(SystemExit, match="no leave-one-out runs"):
        report.main([str(tmp_path / "r"), "--view", "loo"])


# ----------------------------------------------------------------------------- norm x batch view

CELLS = {("layernorm", 256): [60.0, 62.0, 61.0], ("layernorm", 32): [70.0, 71.0, 69.0],
         ("layernorm", 4): [68.0, 70.0, 69.5], ("batchnorm", 256): [63.0, 64.0, 62.5],
         ("batchnorm", 32): [72.0, 70.0, 71.0], ("batchnorm", 4): [20.0, 35.0, 12.0]}


def _nb_config(norm: str, batch: int) -> dict:
    return {"model": _model(TOP, norm=norm), "data": TEN,
            "recipe": {"name": "modern", "lr": 4e-3, "lr_ref_batch": 128, "batch_size": 4096},
            "trainer": {"batch_size": batch, "global_batch": batch, "lr_scaling": "sqrt",
                        "by_recipe": {"torchvision": {"epochs": 24, "lr_scaling": "linear"}}}}


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    root = tmp_path / "nb"
    for (norm, batch), vals in CELLS.items():
        for seed, v in enumerate(vals):
            write_result(root / f"{norm}-b{batch}", TOP, seed, v, experiment="normbatch",
                         config=_nb_config(norm, batch))
    write_result(root / "failed", TOP, 3, status="failed", error="x", experiment="normbatch",
                 config=_nb_config("batchnorm", 4))
    return root


def test_normbatch_table_numbers(nb_dir, tmp_path):
    out = tmp_path / "out"
    paths = report.main([str(nb_dir), "--out", str(out), "--view", "normbatch"])
    assert {p.name for p in paths} == {"normbatch.md", "normbatch.csv", "normbatch.png"}
    with open(out / "normbatch.csv", newline="") as fh:
        rows = {(r["norm"], int(r["batch"])): r for r in csv.DictReader(fh)}
    assert set(rows) == set(CELLS)
    for cell, vals in CELLS.items():
        assert float(rows[cell]["mean"]) == pytest.approx(np.mean(vals), abs=1e-4)
        assert float(rows[cell]["std"]) == pytest.approx(np.std(vals, ddof=1), abs=1e-4)
        assert rows[cell]["n"] == "3" and rows[cell]["seeds"] == "0;1;2"
        assert float(rows[cell]["lr"]) == pytest.approx(4e-3 * math.sqrt(cell[1] / 128))
    assert rows[("batchnorm", 4)]["n_failed"] == "1"
    md = (out / "normbatch.md").read_text()
    table = md.split("### ")[1]
    head = next(ln for ln in table.splitlines() if ln.startswith("| top1"))
    assert head.index("batch 256") < head.index("batch 32") < head.index("batch 4")
    bn = next(ln for ln in table.splitlines() if ln.startswith("| BatchNorm |"))
    assert "22.33 \u00b1 11.68 (n=3) (1 failed)" in bn
    diff = next(ln for ln in table.splitlines() if ln.startswith("| BatchNorm \u2212 LayerNorm"))
    d, lo, hi = _welch(CELLS[("batchnorm", 4)], CELLS[("layernorm", 4)])
    assert f"\u2212{abs(d):.2f} [\u2212{abs(lo):.2f}, \u2212{abs(hi):.2f}] hurt" in diff
    assert "| peak lr (same rule for both norms) | 0.00566 | 0.002 | 0.000707 |" in table
    assert "batch 4 takes 64\u00d7 the optimizer steps of batch 256" in table
    findings = md.split("Findings:")[1]
    assert "At batch 4, BatchNorm \u2212 LayerNorm is \u2212" in findings
    assert "LayerNorm from batch 256 to 4: +" in findings
    assert "BatchNorm at batch 4" in findings  # 22.3 < 2.5 x chance: flagged


def test_normbatch_figure_is_uncut_with_every_seed(nb_dir):
    from ladder.report.figure_views import normbatch_figure
    from ladder.report.normbatch import build_normbatch

    runs = report.load_results(nb_dir)
    (key, group), = report.group_runs(runs).items()
    (table,) = build_normbatch(group)
    assert table.norms == ["layernorm", "batchnorm"] and table.batches == [256, 32, 4]
    fig = normbatch_figure(table, report._group_info(key, group))
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 100.0)
    dots = [ln for ln in ax.get_lines() if len(ln.get_ydata()) == 3 and ln.get_linestyle() == "None"]
    assert any(sorted(ln.get_ydata()) == sorted(CELLS[("batchnorm", 4)]) for ln in dots)
    assert [t.get_text() for t in ax.get_xticklabels()][2].startswith("batch 4")


def test_normbatch_without_such_runs_is_a_clear_error(loo_dir):
    with pytest.raises(SystemExit, match="no norm x batch runs"):
        report.main([str(loo_dir), "--view", "normbatch"])


def test_a_long_figure_title_is_wrapped_to_the_figure_width_not_cut():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ladder.report.figure import fit_title

    title = ("ConvNeXt roadmap (milestones view): imagenette-94c7b512 (10 classes, 9,469 train, "
             "3,925 val images), 32 px, 4 epochs (torchvision-recipe rung: 12) - experiment "
             "'imagenette_cpu'")
    fig = plt.figure(figsize=(12, 5))
    text = fig.suptitle(fit_title(fig, title), fontsize=11)
    fig.canvas.draw()
    box = text.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # inside the figure
    assert fit_title(fig, title).count("\n") >= 1 and fit_title(fig, "short") == "short"
    assert fit_title(fig, title).replace("\n", " ") == title  # nothing lost
    narrow = plt.figure(figsize=(6, 4))
    assert fit_title(narrow, title).count("\n") >= 2
    plt.close("all")
