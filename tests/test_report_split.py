"""Recipe vs architecture in the report's findings (ladder/report/attribution.py)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402
from ladder.report import attribution  # noqa: E402
from ladder.ladders.rungs import RUNGS  # noqa: E402
from test_report import write_result  # noqa: E402

TOP = RUNGS[-1].name
VALUES = {"resnet50": [70.0, 70.2, 70.4], "recipe": [72.0, 72.1, 72.2],
          "kernel7": [74.0, 74.1], TOP: [75.0, 75.5, 76.0]}


def _rows(tmp_path: Path, values: dict[str, list[float]], view: str = "full"):
    root = tmp_path / "r"
    for rung, vals in values.items():
        for seed, v in enumerate(vals):
            write_result(root, rung, seed, v)
    runs = report.load_results(root)
    (key, group), = report.group_runs(runs).items()
    return report.build_table(group, view), report._group_info(key, group), root


def _welch(a, b):
    """Independent Welch interval: df by the Welch-Satterthwaite formula, rounded down."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = math.floor((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)))
    d = np.mean(a) - np.mean(b)
    return d, report.t975(df) * math.sqrt(va + vb), df


def test_main_path_skips_the_side_branches():
    path = attribution.main_path()
    assert path[0] == "resnet50" and path[1] == "recipe" and path[-1] == TOP
    assert not {"kernel9", "kernel11"} & set(path)
    assert len(path) - 2 == 13  # the architectural steps from the recipe rung to ConvNeXt-T


@pytest.mark.parametrize("view", ["full", "milestones"])
def test_split_numbers_measured_and_paper(tmp_path, view):
    rows, _info, _ = _rows(tmp_path, VALUES, view)
    recipe, arch, total = attribution.split(rows)
    assert (recipe.start.name, recipe.end.name, recipe.steps) == ("resnet50", "recipe", 1)
    assert (arch.start.name, arch.end.name, arch.steps) == ("recipe", TOP, 13)
    assert total.steps == 14
    for part, (a, b) in ((recipe, ("recipe", "resnet50")), (arch, (TOP, "recipe")),
                         (total, (TOP, "resnet50"))):
        d, half, df = _welch(VALUES[a], VALUES[b])
        assert part.delta == pytest.approx(d)
        assert part.ci[:2] == pytest.approx((d - half, d + half)) and part.ci[2] == df
        assert part.n == (len(VALUES[b]), len(VALUES[a]))
    # the architectural sum is the telescoped difference, not a sum of the steps' intervals
    assert arch.delta == pytest.approx(75.5 - 72.1)
    # paper: 2.69 with no interval (no seed std for the torchvision ResNet-50); 3.15 from
    # 78.82 +- 0.07 and 81.97 +- 0.06, 3 seeds each: Welch df 3.9 -> 3, t = 3.182
    assert recipe.paper_delta == pytest.approx(2.69) and recipe.paper_ci is None
    assert arch.paper_delta == pytest.approx(3.15)
    half = 3.182 * math.sqrt((0.06 ** 2 + 0.07 ** 2) / 3)
    assert arch.paper_ci[:2] == pytest.approx((3.15 - half, 3.15 + half), abs=1e-6)
    assert arch.paper_ci[2] == 3 and total.paper_ci is None


def test_split_in_the_findings_and_the_markdown(tmp_path):
    _rows(tmp_path, VALUES)
    report.main([str(tmp_path / "r"), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "roadmap.md").read_text()
    findings = md.split("Findings:")[1]
    line = next(s for s in findings.splitlines() if "Recipe vs architecture:" in s)
    assert "+1.90 [" in line and "(paper +2.69, no interval" in line
    assert "13 architectural steps" in line and "by +3.40 [" in line
    assert "(paper +3.15 [+2.98, +3.32])" in line
    share = next(s for s in findings.splitlines() if "The recipe is" in s)
    assert "36% of the measured change" in share and "(paper 46%)" in share  # 1.9 / 5.3
    table = md.split("Recipe vs architecture (measured")[1]
    recipe_row = next(ln for ln in table.splitlines() if ln.startswith("| recipe |"))
    assert "| gain | 3, 3 | +2.69 |" in recipe_row
    # the proxy's recipe step also changes the epochs: the finding says so
    assert "also changes the epochs (4 \u2192 12)" in findings


def test_split_when_an_end_is_missing_or_has_one_seed(tmp_path):
    rows, info, _ = _rows(tmp_path, {"resnet50": [70.0, 71.0], "recipe": [72.0]})
    out = attribution.split_findings(attribution.split(rows), info)
    assert len(out) == 1 and f"`{TOP}` has no completed run" in out[0]
    rows, info, _ = _rows(tmp_path / "b", {"resnet50": [70.0], "recipe": [72.0], TOP: [71.0]})
    out = attribution.split_findings(attribution.split(rows), info)
    assert "no measured intervals yet" in out[1]
    assert "opposite directions" in out[2]  # +2 then -1: no share of the total
