"""The two experiments beyond the ladder, end to end at a tiny setting: the norm x batch sweep
(``train.py -m +sweep=normbatch``) and the leave-one-out sweep (``scripts/loo.py``), each read
back by the report's view."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides

sys.path.insert(0, str(REPO / "scripts"))


def _tiny(cache_dir: Path) -> list[str]:
    """tiny_overrides without the batch keys the experiments set themselves. channels_last is
    off: torch 2.14's CPU backward of a strided 1x1 conv on 6 channels in channels_last
    corrupts the heap (the strided-downsampling rungs at width x0.0625)."""
    return [o for o in tiny_overrides(cache_dir) if not o.startswith(("trainer.batch_size",
                                                                      "trainer.global_batch"))
            ] + ["trainer.channels_last=false"]


def _run(cmd: list[str], cwd: Path, cache_dir: Path, timeout: int = 600):
    env = {**os.environ, "LADDER_CACHE": str(cache_dir), "WANDB_MODE": "offline",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_normbatch_sweep_runs_both_norms_at_each_batch_with_one_lr_rule(tmp_path, cache_dir):
    from ladder import report

    proc = _run([sys.executable, str(REPO / "train.py"), "-m", "+sweep=normbatch", "seed=0",
                 "trainer.batch_size=16,4", *_tiny(cache_dir)], tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "multirun" / "normbatch"
    for norm in ("layernorm", "batchnorm"):
        for batch in (16, 4):
            r = json.loads((sweep / f"separate_downsampling-{norm}-b{batch}" / "seed0" /
                            "result.json").read_text())
            assert r["status"] == "completed" and r["experiment"] == "normbatch"
            cfg = r["config"]
            assert cfg["model"]["norm"] == norm
            assert cfg["trainer"]["global_batch"] == cfg["trainer"]["batch_size"] == batch
            assert cfg["trainer"]["lr_scaling"] == "sqrt" and cfg["recipe"]["lr_ref_batch"] == 128
            assert r["history"][0]["lr"] <= 4e-3 * math.sqrt(batch / 128) + 1e-12
    # another rung through the same sweep file
    proc = _run([sys.executable, str(REPO / "train.py"), "-m", "+sweep=normbatch", "+rung=kernel7",
                 "model.norm=batchnorm", "trainer.batch_size=4", *_tiny(cache_dir)],
                tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / "kernel7-batchnorm-b4" / "seed0" / "result.json").exists()

    paths = report.main([str(sweep), "--out", str(tmp_path / "rep"), "--view", "normbatch"])
    md = (tmp_path / "rep" / "normbatch.md").read_text()
    assert [p.name for p in paths][0] == "normbatch.md"
    table = md.split("### separate_downsampling")[1]
    assert "| LayerNorm | " in table and "| BatchNorm | " in table
    assert f"| peak lr (same rule for both norms) | {4e-3 * math.sqrt(16 / 128):.3g} | " \
           f"{4e-3 * math.sqrt(4 / 128):.3g} |" in table
    assert "### kernel7" not in md  # one cell only: no table


@pytest.mark.slow
def test_loo_script_runs_a_change_and_its_ladder_step_and_the_report_reads_them(tmp_path,
                                                                                  cache_dir):
    from ladder import report

    out = tmp_path / "loo"
    proc = _run([sys.executable, str(REPO / "scripts" / "loo.py"), "--only", "undo_layernorm",
                 "--seeds", "0,1", "--jobs", "2", "--threads", "1", "--out", str(out), "--",
                 *_tiny(cache_dir), "trainer.batch_size=8", "trainer.global_batch=16"],
                tmp_path, cache_dir, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 jobs per seed x 2 seeds" in proc.stdout and "8 jobs, 2 at once" in proc.stdout
    variant = json.loads((out / "undo_layernorm" / "seed1" / "result.json").read_text())
    assert variant["rung"] == "separate_downsampling"
    assert variant["config"]["model"]["norm"] == "batchnorm"
    assert "undo_layernorm" in variant["config"]["logger"]["tags"]
    for name in ("separate_downsampling", "fewer_norms", "layernorm"):
        assert json.loads((out / name / "seed0" / "result.json").read_text())["status"] == \
            "completed"

    report.main([str(out), "--out", str(tmp_path / "rep"), "--view", "loo"])
    md = (tmp_path / "rep" / "loo.md").read_text()
    row = next(ln for ln in md.splitlines() if "norm layernorm \u2192 batchnorm" in ln)
    assert row.count("(n=2, 2)") == 2  # at the top and on the ladder, two seeds each side
    assert "refused by the schema" in next(ln for ln in md.splitlines()
                                           if "spatial_position first" in ln)


def test_loo_list_and_unknown_names(capsys):
    import loo

    from ladder.ladders.variants import loo_jobs

    assert loo.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "12 architectural changes (11 valid)" in out
    assert "REFUSED by the schema: model.activations_per_block='one'" in out
    assert "model.kernel_size=3" in out and "not a change of the architecture: recipe" in out
    jobs = loo_jobs([0], None, True, ["undo_kernel5+kernel7"])
    assert [(n, r, o) for n, r, o, _ in jobs] == [
        ("separate_downsampling", "separate_downsampling", []),
        ("undo_kernel5+kernel7", "separate_downsampling", ["model.kernel_size=3"]),
        ("move_up", "move_up", []), ("kernel7", "kernel7", [])]
    with pytest.raises(ValueError, match="unknown change"):
        loo_jobs([0], None, True, ["undo_nothing"])
    with pytest.raises(SystemExit) as exit_info:  # the script: one line, before any job
        loo.main(["--only", "undo_nothing", "--out", "/nonexistent/loo"])
    assert exit_info.value.code == 2
    assert "unknown change(s) undo_nothing; the changes are undo_" in capsys.readouterr().err
