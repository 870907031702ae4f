"""The roadmap on the W&B dashboard, offline, read back from the runs' own files: the report as
one run of job_type 'report' (scripts/roadmap.py --to-wandb), and what each training run logs
for the dashboard (ladder position in the config, train loss and lr every log_every steps)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402
from ladder.ladders.rungs import RUNGS  # noqa: E402
from conftest import offline_wandb_run  # noqa: E402
from test_report import DEMO, demo_dir, write_result  # noqa: E402,F401  (demo_dir: a fixture)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key


def _table(files: Path, entry: dict) -> dict:
    assert entry["_type"] == "table-file"
    return json.loads((files / entry["path"]).read_text())


def _logged(history: list[dict], prefix: str) -> dict:
    """The nested fields of one logged media entry (read_records flattens them with '/')."""
    row = next(h for h in history if any(k.startswith(prefix + "/") for k in h))
    return {k[len(prefix) + 1:]: v for k, v in row.items() if k.startswith(prefix + "/")}


def test_to_wandb_logs_the_report_as_one_run(demo_dir, tmp_path, offline):
    out = tmp_path / "rep"
    report.main([str(demo_dir), "--out", str(out), "--to-wandb", "ladder-test", "--group", "g1"])
    logged, files = offline_wandb_run(out)
    run = logged["run"]
    assert (run.project, run.run_group, run.job_type, run.display_name) == (
        "ladder-test", "g1", "report", "roadmap-full")
    assert logged["config"]["view"] == "full" and logged["config"]["metric"] == "top1"

    # the table: the CSV's columns and rows, numbers as numbers
    table = _table(files, _logged(logged["history"], "roadmap/table"))
    with open(out / "roadmap.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert table["columns"] == list(rows[0]) == list(report.CSV_FIELDS)
    assert [r[table["columns"].index("rung")] for r in table["data"]] == [r.name for r in RUNGS]
    i_mean = table["columns"].index("mean")
    recipe = next(r for r in table["data"] if r[table["columns"].index("rung")] == "recipe")
    assert recipe[i_mean] == pytest.approx(np.mean(DEMO["recipe"]), abs=1e-4)

    # the bar chart: one bar per measured rung, labels that sort in ladder order
    bars = _table(files, _logged(logged["history"], "roadmap/top1_by_rung_table"))
    labels = [r[0] for r in bars["data"]]
    measured = [r.name for r in RUNGS if r.name in DEMO]
    assert [lab.split(" ", 1)[1] for lab in labels] == measured
    assert labels == sorted(labels) and labels[0] == "00 resnet50" and "03 patchify" in labels
    assert dict(bars["data"])["01 recipe"] == pytest.approx(np.mean(DEMO["recipe"]))
    chart = logged["config"]["_wandb"]["visualize"]["roadmap/top1_by_rung"]
    assert chart["panel_config"]["panelDefId"] == "wandb/bar/v0"
    assert chart["panel_config"]["fieldSettings"] == {"label": "rung", "value": "top1"}

    # the PNG, byte for byte
    image = _logged(logged["history"], "roadmap/figure")
    assert image["_type"] == "image-file"
    assert (files / image["path"]).read_bytes() == (out / "roadmap.png").read_bytes()
    assert logged["summary"]["report_markdown"].startswith("# The ConvNeXt roadmap")


def test_to_wandb_uses_the_runs_sweep_group_or_asks_for_one(tmp_path, offline):
    root = tmp_path / "r"
    for seed, v in enumerate([70.0, 71.0]):
        write_result(root, "resnet50", seed, v, sweep_group="demo-sweep")
        write_result(root, "recipe", seed, v + 5, sweep_group="demo-sweep")
    report.main([str(root), "--out", str(tmp_path / "a"), "--view", "milestones",
                 "--to-wandb", "ent/ladder-test"])
    logged, _ = offline_wandb_run(tmp_path / "a")
    assert (logged["run"].run_group, logged["run"].entity) == ("demo-sweep", "ent")
    assert logged["summary"]["roadmap/split/recipe"] == pytest.approx(5.0)
    write_result(root, "recipe", 2, 77.0, sweep_group="other")
    with pytest.raises(SystemExit, match="--to-wandb needs --group"):
        report.main([str(root), "--out", str(tmp_path / "b"), "--to-wandb", "ladder-test"])
    assert (tmp_path / "b" / "roadmap.md").exists()  # the report itself is written


def test_training_run_logs_its_ladder_position_and_loss_every_log_every_steps(finished_run):
    # finished_run: the milestone alias "depthwise" (rung width), 2 epochs of 2 steps, log_every=1
    result = finished_run.result
    logged, _ = offline_wandb_run(finished_run.dir)
    config = logged["config"]
    assert (config["rung_index"], config["rung_label"], config["milestone"]) == (
        5, "05 width", "depthwise")
    steps = [h for h in logged["history"] if "train/loss" in h]
    assert [h["train/step"] for h in steps] == [1, 2, 3, 4]  # log_every=1, 2 steps per epoch
    for epoch, row in enumerate(result["history"]):
        window = steps[2 * epoch: 2 * epoch + 2]
        # equal batches: the epoch's loss is the mean of its windows, and its lr the last one's
        assert np.mean([h["train/loss"] for h in window]) == pytest.approx(row["train_loss"])
        assert window[-1]["train/lr"] == pytest.approx(row["lr"])
    assert len({h["train/lr"] for h in steps}) > 1  # the schedule moves within the run
    assert [h["epoch"] for h in logged["history"] if "top1" in h] == [1, 2]
