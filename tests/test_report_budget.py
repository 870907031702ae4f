"""What was read and the budget as report axes (ladder/report/budget.py, duplicates.py, load.py),
and scripts/sweep.py --budgets (folders and commands, no training)."""
from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests", ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ladder import report  # noqa: E402
from ladder.report import budget as budget_view  # noqa: E402
from ladder.report.load import _from_record  # noqa: E402
from ladder.ladders.rungs import RUNGS  # noqa: E402
from test_report import write_result  # noqa: E402

PAPER = {r.name: r.paper_top1 for r in RUNGS}
TOP, BOTTOM = "separate_downsampling", "resnet50"


def data(tag: str, train: int = 9469, val: int = 3925) -> dict:
    return {"id": f"imagenette-{tag}", "name": "imagenette", "num_classes": 10,
            "classes": [f"c{i}" for i in range(10)], "train_images": train, "val_images": val}


NETTE, OTHER = data("1a2b3c4d"), data("9f8e7d6c", train=1300, val=500)


def _welch(a, b):
    """Independent check: Welch's 95% interval (t from the table the report uses)."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = max(1, math.floor((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))))
    half = report.t975(df) * math.sqrt(va + vb)
    d = np.mean(a) - np.mean(b)
    return d - half, d + half, df


def _pooled(groups, a, b):
    """Independent check: the pooled interval over ``groups`` for mean(a) - mean(b)."""
    df = sum(len(g) - 1 for g in groups)
    sp = math.sqrt(sum((len(g) - 1) * np.var(g, ddof=1) for g in groups) / df)
    half = report.t975(df) * sp * math.sqrt(1 / len(a) + 1 / len(b))
    d = np.mean(a) - np.mean(b)
    return d - half, d + half, df


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _budget_runs(root: Path, values: dict[float, dict[str, list[float]]], **extra) -> Path:
    """One folder per budget (the layout keeps budgets apart), optimizer steps 300 x B for the
    torchvision-recipe resnet50 and 100 x B for the others."""
    for b, per_rung in values.items():
        for rung, vals in per_rung.items():
            for seed, v in enumerate(vals):
                write_result(root / f"budget{b:g}", rung, seed, v, dataset="imagenette",
                             budget=float(b), data=NETTE,
                             optimizer_steps=int((300 if rung == BOTTOM else 100) * b), **extra)
    return root


# The gap (top - bottom) crosses 0 at budget 2: negative at 1, resolved above 0 from 2 on.
CROSS = {1: {BOTTOM: [60.0, 60.4], TOP: [58.0, 58.6]},
         2: {BOTTOM: [65.0, 65.2], TOP: [68.0, 68.4]},
         4: {BOTTOM: [70.0, 70.2], TOP: [75.0, 75.4]}}


# ------------------------------------------------------------------- never average two datasets


def test_two_folders_under_one_preset_are_two_sections(tmp_path, capsys):
    """Imagenette and another 10-class folder under one preset (same dataset name, other data
    id): two sections, each with its own seeds, headed by the data id and the counts."""
    nette, other = tmp_path / "nette", tmp_path / "other"
    for seed, (a, b) in enumerate([(70.0, 72.0), (70.4, 72.4)]):
        write_result(nette, BOTTOM, seed, a, dataset="imagenette", data=NETTE)
        write_result(nette, TOP, seed, b, dataset="imagenette", data=NETTE)
    write_result(other, BOTTOM, 0, 30.0, dataset="imagenette", data=OTHER)
    write_result(other, TOP, 0, 31.0, dataset="imagenette", data=OTHER)
    out = tmp_path / "out"
    paths = report.main([str(nette), str(other), "--view", "milestones", "--out", str(out)])
    names = {p.name for p in paths}
    assert {"roadmap-imagenette-1a2b3c4d-32px-demo.csv",
            "roadmap-imagenette-9f8e7d6c-32px-demo.csv"} <= names
    a = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-1a2b3c4d-32px-demo.csv")}
    b = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-9f8e7d6c-32px-demo.csv")}
    assert a[BOTTOM]["n"] == "2" and float(a[BOTTOM]["mean"]) == pytest.approx(70.2)
    assert a[BOTTOM]["seeds"] == "0;1" and a[BOTTOM]["data_id"] == "imagenette-1a2b3c4d"
    assert b[BOTTOM]["n"] == "1" and float(b[BOTTOM]["mean"]) == 30.0
    md = (out / "roadmap.md").read_text()
    assert md.count("\n## ") == 2
    assert "## imagenette-1a2b3c4d (10 classes, 9,469 train, 3,925 val images), 32 px" in md
    assert "## imagenette-9f8e7d6c (10 classes, 1,300 train, 500 val images), 32 px" in md
    assert "dataset `imagenette` is split into 2 sections by what was read" in md
    assert "Duplicates" not in md and "several completed" not in capsys.readouterr().err


def test_results_without_a_data_id_never_merge_with_ones_that_have_it(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for seed, v in enumerate([50.0, 50.4]):
        write_result(old, BOTTOM, seed, v, dataset="imagenette")  # written before `data`
    write_result(new, BOTTOM, 0, 90.0, dataset="imagenette", data=NETTE)
    out = tmp_path / "out"
    report.main([str(old), str(new), "--view", "milestones", "--out", str(out)])
    old_rows = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-32px-demo.csv")}
    assert old_rows[BOTTOM]["n"] == "2" and float(old_rows[BOTTOM]["mean"]) == 50.2
    assert old_rows[BOTTOM]["data_id"] == ""
    new_rows = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-1a2b3c4d-32px-demo.csv")}
    assert new_rows[BOTTOM]["n"] == "1" and float(new_rows[BOTTOM]["mean"]) == 90.0
    md = (out / "roadmap.md").read_text()
    assert "## imagenette, 32 px, 4 epochs" in md  # the old heading, as before
    assert "results that record no data id" in md


def _dup_pair(tmp_path: Path, config_a: dict, config_b: dict) -> tuple[Path, Path]:
    older = write_result(tmp_path / "a", TOP, 0, 60.0, data=NETTE, config=config_a)
    newer = write_result(tmp_path / "b", TOP, 0, 64.0, data=NETTE, config=config_b)
    os.utime(older, (1_000_000, 1_000_000))
    os.utime(newer, (2_000_000, 2_000_000))
    write_result(tmp_path / "a", TOP, 1, 62.0, data=NETTE, config=config_a)
    return older, newer


def test_a_duplicate_is_one_sentence_naming_both_files(tmp_path, capsys):
    cfg = {"recipe": {"lr": 0.004}, "seed": 0, "output_dir": "x"}
    older, newer = _dup_pair(tmp_path, cfg, {**cfg, "seed": 5, "output_dir": "y",
                                            "logger": {"group": "other"}})
    out = tmp_path / "out"
    report.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    row = {r["rung"]: r for r in _csv(out / "roadmap.csv")}[TOP]
    assert row["n"] == "2" and float(row["mean"]) == pytest.approx((64.0 + 62.0) / 2)
    md = (out / "roadmap.md").read_text()
    sentence = next(line for line in md.splitlines() if "completed results (" in line)
    assert str(older) in sentence and str(newer) in sentence
    assert f"the newest, `{newer}`, is used" in sentence
    assert "settings are the same" in sentence  # seed, paths and logging do not count
    assert str(older) in capsys.readouterr().err


def test_a_duplicate_with_other_settings_names_the_keys(tmp_path):
    _dup_pair(tmp_path, {"recipe": {"lr": 0.004}}, {"recipe": {"lr": 0.001}})
    out = tmp_path / "out"
    report.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    md = (out / "roadmap.md").read_text()
    assert "their settings differ" in md and "recipe.lr (0.004 vs 0.001)" in md


def test_budgets_are_separate_sections_in_the_ladder_views(tmp_path):
    root = _budget_runs(tmp_path / "runs", {1: CROSS[1], 2: CROSS[2]})
    out = tmp_path / "out"
    report.main([str(root), "--view", "milestones", "--out", str(out)])
    one = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-1a2b3c4d-32px-demo.csv")}
    two = {r["rung"]: r for r in _csv(out / "roadmap-imagenette-1a2b3c4d-32px-demo-budget2.csv")}
    assert float(one[TOP]["mean"]) == pytest.approx(58.3) and one[TOP]["budget"] == "1"
    assert float(two[TOP]["mean"]) == pytest.approx(68.2) and two[TOP]["budget"] == "2"
    md = (out / "roadmap.md").read_text()
    assert md.count("\n## ") == 2 and ", budget \u00d72 \u2014 experiment 'demo'" in md
    agreement = _csv(out / "agreement.csv")
    assert {r["budget"] for r in agreement} == {"1", "2"}


# ---------------------------------------------------------------------------- the budget view


def test_budget_view_gap_intervals_and_the_crossing(tmp_path):
    root = _budget_runs(tmp_path / "runs", CROSS)
    out = tmp_path / "out"
    paths = report.main([str(root), "--view", "budget", "--out", str(out)])
    assert [p.name for p in paths] == ["budget.md", "budget.csv", "budget.png"]
    rows = {r["budget"]: r for r in _csv(out / "budget.csv")}
    assert list(rows) == ["1", "2", "4"]
    for b, r in rows.items():
        top, bottom = CROSS[float(b)][TOP], CROSS[float(b)][BOTTOM]
        assert (r["bottom"], r["top"]) == (BOTTOM, TOP)
        assert float(r["gap"]) == pytest.approx(np.mean(top) - np.mean(bottom), abs=1e-4)
        lo, hi, df = _welch(top, bottom)
        assert (float(r["welch_low"]), float(r["welch_high"])) == pytest.approx((lo, hi), abs=1e-4)
        assert int(r["welch_df"]) == df
        plo, phi, pdf = _pooled([top, bottom], top, bottom)
        assert (float(r["pooled_low"]), float(r["pooled_high"])) == pytest.approx((plo, phi),
                                                                                  abs=1e-4)
        assert int(r["pooled_df"]) == pdf == 2
        assert float(r["top_steps"]) == 100 * float(b)
        assert float(r["bottom_steps"]) == 300 * float(b)
        assert float(r["paper_gap"]) == pytest.approx(PAPER[TOP] - PAPER[BOTTOM], abs=1e-2)
        assert r["spearman"] == ""  # two rungs: no rank correlation
    assert [rows[b]["welch_above_0"] for b in rows] == ["no", "yes", "yes"]
    assert {r["overtakes_at_welch"] for r in rows.values()} == {"2"}
    md = (out / "budget.md").read_text()
    assert (f"Under the Welch rule, `{TOP}` overtakes `{BOTTOM}` at budget \u00d72: the first "
            "budget measured whose 95% interval for the gap lies above 0") in md
    assert "stays above 0 at every larger budget measured" in md
    assert "The point estimate of the gap crosses 0 between budget \u00d71 and \u00d72" in md
    assert (out / "budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "budget.png").stat().st_size > 10_000


def test_budget_view_without_a_crossing_says_so(tmp_path):
    noisy = {1: {BOTTOM: [60.0, 62.0], TOP: [55.0, 58.0]},
             2: {BOTTOM: [60.0, 64.0], TOP: [61.0, 65.0]}}  # point estimate +1.0, Welch wide
    root = _budget_runs(tmp_path / "runs", noisy)
    out = tmp_path / "out"
    report.main([str(root), "--view", "budget", "--out", str(out)])
    rows = _csv(out / "budget.csv")
    assert [r["welch_above_0"] for r in rows] == ["no", "no"]
    assert {r["overtakes_at_welch"] for r in rows} == {""}
    md = (out / "budget.md").read_text()
    assert (f"Under the Welch rule, `{TOP}` does not overtake `{BOTTOM}` at any budget "
            "measured") in md
    assert "The point estimate of the gap crosses 0 between budget \u00d71 and \u00d72" in md
    behind = {1: noisy[1], 2: {BOTTOM: [60.0, 64.0], TOP: [58.0, 62.0]}}
    report.main([str(_budget_runs(tmp_path / "behind", behind)), "--view", "budget", "--out",
                 str(tmp_path / "out2")])
    md = (tmp_path / "out2" / "budget.md").read_text()
    assert "at or below 0 at every budget measured" in md and "does not cross 0" in md


def test_budget_view_ahead_from_the_start_then_behind(tmp_path):
    ahead = {1: {BOTTOM: [60.0, 60.2], TOP: [70.0, 70.4]},
             2: {BOTTOM: [60.0, 60.2], TOP: [59.0, 59.4]}}
    sections = budget_view.budget_sections(report.load_results(
        _budget_runs(tmp_path / "runs", ahead)))
    text = " ".join(budget_view.crossing_sentences(sections[0]))
    assert (f"Under the Welch rule, `{TOP}` overtakes `{BOTTOM}` at budget \u00d71: the first "
            "budget measured whose 95% interval for the gap lies above 0") in text
    assert "already at the smallest budget where the Welch rule can judge the gap" in text
    assert "it is not above 0 at \u00d72" in text
    assert ("above 0 already at the smallest budget where the gap is measured (\u00d71)" in text
            and "at or below 0 again at \u00d72" in text)


def test_budget_view_rank_correlation_per_budget(tmp_path):
    three = {1: {BOTTOM: [60.0, 60.4], "recipe": [57.0, 58.8], TOP: [58.0, 58.6]},
             2: {BOTTOM: [65.0, 65.2], "recipe": [66.0, 66.4], TOP: [68.0, 68.4]}}
    root = _budget_runs(tmp_path / "runs", three)
    out = tmp_path / "out"
    report.main([str(root), "--view", "budget", "--out", str(out)])
    rows = {r["budget"]: r for r in _csv(out / "budget.csv")}
    # paper order resnet50 < recipe < separate_downsampling; budget 1 measures 3, 1, 2 in
    # ranks (Spearman 1 - 6 * (4 + 1 + 1) / 24 = -0.5), budget 2 the paper's order (1.0)
    assert float(rows["1"]["spearman"]) == pytest.approx(-0.5)
    assert float(rows["2"]["spearman"]) == pytest.approx(1.0)
    assert rows["1"]["spearman_rungs"] == "3"
    # the interval resamples each rung's seeds at that budget, in ladder order
    per = three[1]
    lo, hi, _ = report.bootstrap_spearman([per[BOTTOM], per["recipe"], per[TOP]],
                                          [PAPER[BOTTOM], PAPER["recipe"], PAPER[TOP]])
    assert (float(rows["1"]["spearman_low"]), float(rows["1"]["spearman_high"])) == \
        pytest.approx((lo, hi), abs=1e-4)
    assert lo < hi and lo <= -0.5 <= hi  # recipe's and the top's seeds overlap: ranks move


def test_budget_figure_is_log_steps_with_every_seed(tmp_path):
    root = _budget_runs(tmp_path / "runs", CROSS)
    sections = budget_view.budget_sections(report.load_results(root))
    from ladder.report.figure_views import budget_figure

    fig = budget_figure(sections[0])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0.0, 100.0)
    dots = [(x, y) for line in ax.get_lines() if line.get_alpha() == 0.4
            for x, y in zip(line.get_xdata(), line.get_ydata())]
    expected = [((300 if rung == BOTTOM else 100) * b, v) for b, per in CROSS.items()
                for rung, vals in per.items() for v in vals]
    assert sorted(dots) == sorted(expected)


def test_a_budget_of_zero_or_below_is_left_out_with_one_sentence(tmp_path, capsys):
    root = _budget_runs(tmp_path / "runs", CROSS)
    zero = write_result(tmp_path / "runs" / "bad0", TOP, 0, 99.0, budget=0, data=NETTE,
                        dataset="imagenette")
    neg = write_result(tmp_path / "runs" / "badneg", TOP, 1, 99.0, budget=-2, data=NETTE,
                       dataset="imagenette")
    out = tmp_path / "out"
    report.main([str(root), "--view", "budget", "--out", str(out)])
    md = (out / "budget.md").read_text()
    for path, what in ((zero, "is 0"), (neg, "is -2")):
        assert (f"- {path}: its budget {what}, but a budget multiplies the epochs and must be "
                "> 0, so this run is left out of every view.") in md
    assert str(zero) in capsys.readouterr().err
    assert {r["budget"] for r in _csv(out / "budget.csv")} == {"1", "2", "4"}
    report.main([str(root), "--view", "milestones", "--out", str(tmp_path / "ms")])
    ms = (tmp_path / "ms" / "roadmap.md").read_text()
    assert ms.count("\n## ") == 3 and "99.00" not in ms  # budgets 1, 2, 4; the bad ones left out


def test_one_rung_and_seed_at_one_budget_with_other_settings_stops_the_view(tmp_path):
    root = _budget_runs(tmp_path / "runs", CROSS, config={"recipe": {"lr": 0.004}})
    other = write_result(tmp_path / "runs" / "rerun", TOP, 0, 70.0, dataset="imagenette",
                         budget=2.0, data=NETTE, optimizer_steps=200,
                         config={"recipe": {"lr": 0.001}})
    os.utime(other, (4e9, 4e9))  # the newer of the two
    with pytest.raises(SystemExit) as e:
        report.main([str(root), "--view", "budget", "--out", str(tmp_path / "out")])
    msg = str(e.value)
    assert f"`{TOP}` seed 0 at budget \u00d72 has two completed results trained with different" \
           " settings" in msg
    assert str(other) in msg and "runs/budget2/" in msg and "recipe.lr (0.004 vs 0.001)" in msg
    assert msg.count(" has two completed results") == 1


def test_old_results_have_budget_one_and_unknown_steps(tmp_path):
    root = tmp_path / "runs"
    for seed, (a, b) in enumerate([(60.0, 61.0), (60.2, 61.4)]):
        write_result(root, BOTTOM, seed, a)
        write_result(root, TOP, seed, b)
    runs = report.load_results(root)
    assert {(r.budget, r.optimizer_steps, r.data) for r in runs} == {(1.0, None, None)}
    out = tmp_path / "out"
    report.main([str(root), "--view", "budget", "--out", str(out)])
    md = (out / "budget.md").read_text()
    assert "| \u00d71 | ? / ? |" in md
    assert "4 run(s) record no `optimizer_steps`" in md


def test_epochs_from_the_config_include_the_budget():
    cfg = {"trainer": {"epochs": None, "epoch_scale": 0.1, "budget": 2.0},
           "recipe": {"name": "modern", "epochs": 300}}
    base = {"rung": "micro", "seed": 0, "recipe": "modern", "config": cfg, "budget": 2.0}
    assert _from_record(base, "x").epochs == 60  # ceil(300 * 0.1) * 2
    assert _from_record({**base, "epochs": 61}, "x").epochs == 61  # the recorded one wins
    by_recipe = {**cfg, "trainer": {**cfg["trainer"], "epochs": 4,
                                    "by_recipe": {"torchvision": {"epochs": 12}}}}
    tv = {**base, "recipe": "torchvision", "config": by_recipe, "budget": 0.5}
    assert _from_record(tv, "x").epochs == 6


# ------------------------------------------------------------------- scripts/sweep.py --budgets


def _fake_train(calls: list[list[str]]):
    """Stands in for subprocess.Popen in ladder.train.jobs: records the command and writes the
    result.json a run would, into the folder the command names; the process ends at once."""
    class Finished:
        def __init__(self, cmd, **kw):
            run(cmd)

        def wait(self) -> int:
            return 0

        def send_signal(self, sig) -> None:
            pass

    def run(cmd, **kw):
        calls.append(cmd)
        args = dict(a.split("=", 1) for a in cmd[2:] if "=" in a)
        budget = float(args.get("trainer.budget", 1))
        rung, seed = args["+rung"], int(args["seed"])
        run_dir = Path(args["hydra.run.dir"])
        ladder_top = rung == "micro"  # the milestone name of separate_downsampling
        top1 = (55.0 + 4 * budget if ladder_top else 60.0 + budget) + 0.3 * seed
        (run_dir / "result.json").write_text(json.dumps({
            "schema": "ladder.result/1", "status": "completed", "rung": rung, "seed": seed,
            "experiment": "demo", "dataset": "demo", "image_size": 32, "budget": budget,
            "optimizer_steps": int(100 * budget), "data": NETTE, "metrics": {"top1": top1},
            "config": {}}))
    return Finished


def test_sweep_budgets_writes_the_folders_the_budget_view_reads(tmp_path, monkeypatch, capsys):
    import sweep

    from ladder.train import jobs
    from ladder.ladders.conf_store import budget_suffix

    calls: list[list[str]] = []
    monkeypatch.setattr(jobs.subprocess, "Popen", _fake_train(calls))
    out = tmp_path / "sweep"
    code = sweep.main(["--rungs", f"{BOTTOM},micro", "--seeds", "0,1", "--budgets", "1,2,0.5",
                       "--first", "micro", "--out", str(out), "--", "preset=demo"])
    assert code == 0 and len(calls) == 12
    dirs = sorted(str(p.parent.relative_to(out)) for p in out.rglob("result.json"))
    assert dirs == sorted(f"{rung}/seed{s}{sfx}" for rung in (BOTTOM, "micro")
                          for s in (0, 1) for sfx in ("", "-budget2", "-budget0.5"))
    assert budget_suffix(2.0) == "-budget2" and budget_suffix(0.5) == "-budget0.5"
    for cmd in calls:
        args = dict(a.split("=", 1) for a in cmd[2:] if "=" in a)
        assert args["hydra.run.dir"].endswith(f"seed{args['seed']}"
                                              + budget_suffix(float(args["trainer.budget"])))
        assert cmd[-1] == "preset=demo"
    assert [c[2] for c in calls[:6]] == ["+rung=micro"] * 6  # --first still goes first
    report.main([str(out), "--view", "budget", "--out", str(tmp_path / "report")])
    rows = _csv(tmp_path / "report" / "budget.csv")
    assert [r["budget"] for r in rows] == ["0.5", "1", "2"]
    assert {(r["bottom"], r["top"]) for r in rows} == {(BOTTOM, TOP)}


def test_sweep_budgets_from_an_override_and_bad_budgets(tmp_path, monkeypatch):
    import sweep

    from ladder.train import jobs

    calls: list[list[str]] = []
    monkeypatch.setattr(jobs.subprocess, "Popen", _fake_train(calls))
    out = tmp_path / "sweep"
    assert sweep.main(["--rungs", BOTTOM, "--out", str(out), "--", "trainer.budget=4"]) == 0
    assert (out / BOTTOM / "seed0-budget4" / "result.json").exists()
    assert sum(a.startswith("trainer.budget=") for a in calls[0]) == 1
    with pytest.raises(SystemExit, match="must be a number > 0"):
        sweep.main(["--rungs", BOTTOM, "--budgets", "1,0", "--out", str(out)])
    with pytest.raises(SystemExit, match="not both"):
        sweep.main(["--rungs", BOTTOM, "--budgets", "2", "--out", str(out), "--",
                    "trainer.budget=4"])
    without = len(calls)
    sweep.main(["--rungs", BOTTOM, "--out", str(tmp_path / "plain")])
    assert not any(a.startswith("trainer.budget") for a in calls[without])
    assert (tmp_path / "plain" / BOTTOM / "seed0" / "result.json").exists()


def test_budget_view_to_wandb_logs_its_table_figure_and_markdown(tmp_path, monkeypatch):
    from conftest import offline_wandb_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    root = _budget_runs(tmp_path / "runs", CROSS)
    out = tmp_path / "rep"
    report.main([str(root), "--view", "budget", "--out", str(out), "--to-wandb", "ladder-test",
                 "--group", "g1"])
    logged, files = offline_wandb_run(out)
    row = next(h for h in logged["history"] if any(k.startswith("budget/table/") for k in h))
    table = json.loads((files / row["budget/table/path"]).read_text())
    with open(out / "budget.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert table["columns"] == list(rows[0])
    assert [r[table["columns"].index("budget")] for r in table["data"]] == [1, 2, 4]
    assert any(k.startswith("budget/budget/") for k in row)  # the figure
    assert logged["summary"]["report_markdown"] == (out / "budget.md").read_text()


def test_settings_recorded_before_a_schema_key_existed_compare_at_its_default():
    from ladder.report.duplicates import settings_diff
    from ladder.report.load import RunResult

    def run(model: dict, by_recipe: dict, recipe: str = "modern") -> RunResult:
        return RunResult(rung="micro", seed=0, status="completed", dataset="d", image_size=32,
                         experiment="e", config={"model": {"kernel_size": 7, **model},
                                                 "recipe": {"name": recipe},
                                                 "trainer": {"by_recipe": by_recipe}})

    old = run({}, {"torchvision": {"epochs": 12}})
    new = run({"stride_layer": "spatial", "shortcut_pool": False},
              {"torchvision": {"epochs": 12}, "tricks": {"epochs": 12}})
    assert settings_diff(old, new) == []  # new keys at their defaults; another recipe's budget
    changed = run({"shortcut_pool": True}, {"torchvision": {"epochs": 12}})
    assert settings_diff(old, changed) == ["model.shortcut_pool"]
    own = run({}, {"modern": {"epochs": 3}, "torchvision": {"epochs": 12}})
    assert settings_diff(old, own) == ["trainer.by_recipe.modern.epochs"]  # its own recipe's
