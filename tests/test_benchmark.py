"""The benchmark runs, times the ladder and the reference in the same run, and writes JSON."""
from __future__ import annotations

import json

import pytest

from ladder.benchmark import main


def test_benchmark_reports_ratios_against_the_reference(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rows = main(["--rungs", "resnet50,micro,kernel7", "--batch", "2", "--size", "32",
                 "--steps", "1", "--warmup", "1", "--device", "cpu", "--json", str(out)])
    assert [r["rung"] for r in rows] == ["resnet50", "separate_downsampling", "kernel7"]
    assert rows[0]["reference"] == "torchvision.resnet50"
    assert rows[1]["reference"] == "timm.convnext_tiny"
    assert "ratio" not in rows[2]  # no reference implementation of an intermediate rung
    for r in rows[:2]:
        assert r["img_per_s"] > 0 and r["ratio"] == pytest.approx(
            r["img_per_s"] / r["reference_img_per_s"])
    saved = json.loads(out.read_text())
    assert saved["precision"] == "fp32" and len(saved["rows"]) == 3
    assert "torchvision.resnet50" in capsys.readouterr().out


def test_benchmark_unknown_rung_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--rungs", "resnet51"])
    assert exit_info.value.code == 2 and "valid rungs" in capsys.readouterr().err
