"""The proxy calibration grid: reading it, its jobs, the rule that chooses, and a tiny grid run
end to end through scripts/calibrate.py (real train.py jobs on generated images)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides
from ladder.ladders.calibration import grid_runs, load_grid
from ladder.nets.config import ConfigError
from ladder.report.calibration import Point, choose, setting_of

REPO = Path(__file__).resolve().parents[1]


def _grid(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return load_grid(path)


GRID = """
holdout: 0.25
base_seeds: [0, 1]
min_margin: 0.5
recipes:
  modern:
    end: micro
    axes:
      lr: {key: recipe.lr, values: [0.002, 0.008]}
      layer_scale: {key: model.layer_scale_init, values: [0.1]}
"""


def test_the_package_grid_reads_and_gives_about_two_dozen_runs():
    grid = load_grid("proxy")
    runs = grid_runs(grid)
    assert {r.recipe: r.end for r in grid.recipes} == {"modern": "micro", "torchvision": "resnet50"}
    assert 16 <= sum(len(seeds) for _, _, seeds in runs) <= 24
    assert all(args[1] == f"data.holdout={grid.holdout}" for _, args, _ in runs)


def test_grid_runs_change_one_setting_from_the_base(tmp_path):
    grid = _grid(tmp_path, GRID)
    assert grid_runs(grid) == [
        ("modern-base", ("+rung=micro", "data.holdout=0.25"), (0, 1)),
        ("modern-lr-0.002", ("+rung=micro", "data.holdout=0.25", "recipe.lr=0.002"), (0,)),
        ("modern-lr-0.008", ("+rung=micro", "data.holdout=0.25", "recipe.lr=0.008"), (0,)),
        ("modern-layer_scale-0.1", ("+rung=micro", "data.holdout=0.25",
                                    "model.layer_scale_init=0.1"), (0,))]
    base = {"recipe": {"lr": 0.004}, "model": {"layer_scale_init": 1e-6}}
    point = {"recipe": {"lr": 0.002}, "model": {"layer_scale_init": 1e-6}}
    assert setting_of(grid, "modern", point, base) == {"recipe.lr": 0.002}
    assert setting_of(grid, "modern", base, base) == {}


@pytest.mark.parametrize("text, words", [
    ("holdout: 1.5\nrecipes: {}\n", "not a fraction"),
    ("holdout: 0.1\nrecipes: {modern: {end: micro, axes: {x: {key: trainer.epochs, "
     "values: [1]}}}}\n", "recipe.* or model.*"),
    ("holdout: 0.1\nrecipes: {modern: {axes: {}}}\n", "needs an 'end'"),
    ("recipes: {}\n", "no 'holdout'")])
def test_a_bad_grid_is_refused_in_one_sentence(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words):
        _grid(tmp_path, text)


def _pt(name, setting, *held):
    return Point(name, setting, dict(enumerate(held)), {})


def test_the_rule_adopts_what_beats_the_base_by_the_margin(tmp_path):
    grid = _grid(tmp_path, GRID)
    base = _pt("modern-base", {}, 50.0, 51.0)  # std 0.71: margin 1.41
    pts = [base, _pt("modern-lr-0.002", {"recipe.lr": 0.002}, 51.5),  # +1.0: inside the noise
           _pt("modern-lr-0.008", {"recipe.lr": 0.008}, 53.0),  # +2.5: adopted
           _pt("modern-layer_scale-0.1", {"model.layer_scale_init": 0.1}, 52.5)]  # +2.0
    verdict = choose(pts, grid, "modern")
    assert verdict["margin"] == pytest.approx(2 * 0.7071, abs=1e-3)
    assert verdict["adopted"] == {"recipe.lr": 0.008, "model.layer_scale_init": 0.1}
    assert verdict["choice"] is None  # two adopted: the confirmation decides
    both = {"recipe.lr": 0.008, "model.layer_scale_init": 0.1}
    assert choose(pts + [_pt("modern-chosen", both, 54.0, 53.5)], grid, "modern")["choice"] == both
    assert choose(pts + [_pt("modern-chosen", both, 52.0, 52.5)], grid,
                  "modern")["choice"] == {"recipe.lr": 0.008}  # together worse than lr alone
    flat = [base, _pt("modern-lr-0.002", {"recipe.lr": 0.002}, 51.0)]
    assert choose(flat, grid, "modern") == {"adopted": {}, "choice": {},
                                             "margin": pytest.approx(1.414, abs=1e-3)}


@pytest.mark.slow
def test_a_tiny_grid_runs_and_reports_end_to_end(tmp_path, cache_dir):
    grid = tmp_path / "g.yaml"
    grid.write_text(GRID.replace("base_seeds: [0, 1]", "base_seeds: [0]")
                    .replace("values: [0.002, 0.008]", "values: [0.002]")
                    .replace("      layer_scale: {key: model.layer_scale_init, values: [0.1]}\n", ""))
    out = tmp_path / "runs"
    cmd = [sys.executable, str(REPO / "scripts" / "calibrate.py"), "--grid", str(grid),
           "--jobs", "2", "--threads", "1", "--out", str(out), "--", *tiny_overrides(cache_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.parent.parent.name for p in out.glob("*/seed*/result.json")) == [
        "modern-base", "modern-lr-0.002"]
    rep = subprocess.run([sys.executable, str(REPO / "scripts" / "calibrate.py"), "--grid",
                          str(grid), "--report", str(out), "--out", str(tmp_path / "rep")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    rows = list(csv.DictReader(open(tmp_path / "rep" / "calibration.csv")))
    assert [r["run"] for r in rows] == ["modern-base", "modern-lr-0.002"]
    assert rows[1]["setting"] == "recipe.lr=0.002" and rows[0]["vs_base"] == ""
    md = (tmp_path / "rep" / "calibration.md").read_text()
    assert "Only the held-out top-1 decides" in md and "`recipe.lr=0.002`" in md
