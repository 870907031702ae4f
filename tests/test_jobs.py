"""scripts/sweep.py on ladder/train/jobs.py: real train.py processes into OUT/<rung>/seed<S>/, every
job runs and is reported when jobs fail, and a rerun resumes (a completed job is not retrained)."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO, tiny_overrides

sys.path.insert(0, str(REPO / "scripts"))


def test_sweep_runs_jobs_keeps_going_past_a_failure_and_resumes(tmp_path, cache_dir,
                                                                 monkeypatch, capsys):
    import sweep

    monkeypatch.setenv("LADDER_CACHE", str(cache_dir))
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "sweep"
    args = ["--rungs", "depthwise,kernel7", "--seeds", "0", "--jobs", "2", "--threads", "1",
            "--out", str(out), "--", *tiny_overrides(cache_dir), "trainer.channels_last=false",
            "model.kernel_size=5"]
    assert sweep.main(args) == 0
    first = json.loads((out / "depthwise" / "seed0" / "result.json").read_text())
    assert first["status"] == "completed" and first["rung"] == "width"
    assert json.loads((out / "kernel7" / "seed0" / "result.json").read_text())[
        "config"]["model"]["kernel_size"] == 5
    printed = capsys.readouterr().out
    assert "2 jobs, 2 at once, 1 threads each" in printed and "2 ok, 0 failed" in printed

    mtime = (out / "depthwise" / "seed0" / "result.json").stat().st_mtime_ns
    assert sweep.main(args) == 0  # the rerun resumes: nothing to do
    assert (out / "depthwise" / "seed0" / "result.json").stat().st_mtime_ns == mtime
    assert "nothing to do" in (out / "depthwise" / "seed0" / "train.log").read_text()

    bad = tmp_path / "bad"
    assert sweep.main(["--rungs", "depthwise", "--seeds", "0,1", "--jobs", "2", "--out", str(bad),
                       "--", *tiny_overrides(cache_dir), "trainer.batch_size=0"]) == 1
    printed = capsys.readouterr().out
    assert "0 ok, 2 failed" in printed and "failed: depthwise seed 1 (exit 2)" in printed
    assert "trainer.batch_size=0" in (bad / "depthwise" / "seed0" / "train.log").read_text()


def test_unknown_rung_is_refused_before_any_job(tmp_path):
    import sweep

    with pytest.raises(ValueError, match="valid rungs"):
        sweep.main(["--rungs", "depthwise,resnet51", "--out", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()


def test_threads_default_to_the_cores_each_job_gets(monkeypatch):
    from ladder.train import jobs

    monkeypatch.setattr(jobs, "available_cores", lambda: 8)
    assert (jobs.default_threads(1), jobs.default_threads(2), jobs.default_threads(16)) == (8, 4, 1)
