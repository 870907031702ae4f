"""The trainer end to end on tiny configs: every rung, data groups, W&B offline, multirun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import (FINISHED_RUN, REPO, offline_wandb_run, tiny_overrides, typed_config,
                      write_image_folder)
from ladder.ladders import rungs
from ladder.data.loaders import DataError, build_datasets, check_image_folder
from ladder.train.trainer import train


@pytest.mark.parametrize("name", rungs.RUNG_NAMES)
def test_every_rung_trains_a_few_steps(tiny, tmp_path, name):
    result = train(tiny(name), tmp_path)
    assert result["status"] == "completed" and result["rung"] == name
    assert 0.0 <= result["metrics"]["top1"] <= 100.0
    assert result["history"][0]["val_images"] == 30  # 10 classes x 3 val images, each once
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["metrics"] == result["metrics"]
    assert saved["gflops"] == pytest.approx(rungs.resolve(name).paper_gflops, abs=0.32)
    assert (tmp_path / "checkpoints" / "last.pt").exists()


def test_result_json_has_what_the_report_needs(finished_run):
    result = json.loads(json.dumps(finished_run.result))
    for key in ("rung", "milestone", "seed", "experiment", "dataset", "image_size", "epochs",
                "recipe", "metrics", "params", "gflops", "train_img_per_s", "wall_time_s",
                "git_commit", "command", "config"):
        assert key in result, key
    assert result["rung"] == "width" and result["milestone"] == "depthwise" and result["seed"] == 3
    assert result["recipe"] == "modern" and result["config"]["model"]["widths"] == [96, 192, 384, 768]
    assert result["params"] > 30e6  # the paper-scale rung (width: 33.8M), not the tiny one
    assert result["train_img_per_s"] > 0
    assert json.loads((finished_run.dir / "result.json").read_text()) == result


def test_cpu_threads_apply_to_the_run_and_are_recorded_then_given_back(tiny, tmp_path):
    before = torch.get_num_threads()
    want = 1 if before > 1 else 2
    result = train(tiny("depthwise", f"trainer.cpu_threads={want}", "data.pipeline=loader"),
                   tmp_path)
    assert result["device"].endswith(f", {want} threads") and result["data_pipeline"] == "loader"
    assert torch.get_num_threads() == before  # the caller's process keeps its own setting


def test_completed_run_is_not_retrained(finished_run, tmp_path, capsys):
    run = finished_run.copy_to(tmp_path / "run")
    mtime = (run / "result.json").stat().st_mtime_ns
    again = train(typed_config(FINISHED_RUN[0], finished_run.overrides), run)
    assert again["metrics"] == finished_run.result["metrics"]
    assert (run / "result.json").stat().st_mtime_ns == mtime
    assert "already completed" in capsys.readouterr().out


def test_ema_weights_are_evaluated(tiny, tmp_path):
    result = train(tiny("micro", "recipe.ema=true", "recipe.ema_decay=0.5"), tmp_path)
    assert result["metrics"]["ema_top1"] is not None
    assert "ema_top1" in result["history"][-1]


def test_nan_loss_stops_with_the_step(tiny, tmp_path, monkeypatch):
    from ladder.train import trainer as trainer_mod

    monkeypatch.setattr(trainer_mod.Trainer, "inject_nan_at", 1)
    with pytest.raises(trainer_mod.NonFiniteLoss, match="optimizer step 1"):
        train(tiny("micro"), tmp_path)
    failed = json.loads((tmp_path / "result.json").read_text())
    assert failed["status"] == "failed" and "step 1" in failed["error"]


# ----------------------------------------------------------------------------- data groups
def test_imagefolder_group_trains_on_a_real_jpeg_folder(tiny, tmp_path):
    root = write_image_folder(tmp_path / "folder")
    cfg = tiny("resnet50", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
               "data.image_size=32", "trainer.global_batch=8")
    result = train(cfg, tmp_path / "run")
    assert result["dataset"] == "imagefolder" and result["history"][0]["val_images"] == 9


def test_synthetic_group(tiny, tmp_path):
    cfg = tiny("micro", "data=synthetic", "data.num_classes=4", "data.image_size=32",
               "data.synthetic_train_size=32", "data.synthetic_val_size=8", "data.num_workers=0")
    assert train(cfg, tmp_path)["history"][0]["val_images"] == 8


def test_demo_dataset_is_deterministic_and_cached(tiny, cache_dir):
    cfg = tiny("micro")
    train_a, val_a, root = build_datasets(cfg.data, cfg.recipe)
    assert Path(root, ".complete").exists()
    assert len(train_a) == 80 and len(val_a) == 30
    first = Path(train_a.samples[0][0]).read_bytes()
    train_b, _, root_b = build_datasets(cfg.data, cfg.recipe)  # cached: same files
    assert root_b == root and Path(train_b.samples[0][0]).read_bytes() == first
    from ladder.data.loaders import _demo_image
    import numpy as np
    a = np.asarray(_demo_image(3, np.random.default_rng([0, 3])))
    b = np.asarray(_demo_image(3, np.random.default_rng([0, 3])))
    assert (a == b).all()


def test_missing_root_names_the_path_and_layout(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'} does not exist.*train/<class>"):
        check_image_folder(tmp_path / "nope")


def test_missing_val_names_the_layout(tmp_path):
    root = write_image_folder(tmp_path / "f")
    import shutil
    shutil.rmtree(root / "val")
    with pytest.raises(DataError, match="has no 'val/' folder.*expected layout"):
        check_image_folder(root)


def test_empty_class_folder_is_named(tmp_path):
    root = write_image_folder(tmp_path / "f")
    (root / "train" / "zzz").mkdir()
    with pytest.raises(DataError, match="zzz is empty"):
        check_image_folder(root)


def test_classes_must_match_between_splits(tmp_path):
    root = write_image_folder(tmp_path / "f")
    import shutil
    shutil.rmtree(root / "val" / "c")
    with pytest.raises(DataError, match="different classes"):
        check_image_folder(root)


# ----------------------------------------------------------------------------- W&B offline
def test_wandb_offline_run_records_config_metrics_and_summary(finished_run):
    # finished_run: logger=wandb with no key (HOME without ~/.netrc), so mode auto is offline
    result = finished_run.result
    logged, _ = offline_wandb_run(finished_run.dir)
    run = logged["run"]
    assert (run.project, run.display_name, run.run_group, run.job_type) == (
        "ladder-test", "width", "g1", "train")
    assert {"demo", "modern"} <= set(run.tags)
    assert logged["config"]["rung"] == "width"
    assert logged["config"]["model"]["widths"] == [96, 192, 384, 768]  # the resolved config,
    assert logged["config"]["model"]["kernel_size"] == 3  # as a plain dict
    epochs = [h for h in logged["history"] if "top1" in h]
    assert [h["epoch"] for h in epochs] == [1, 2]
    for h, row in zip(epochs, result["history"]):
        assert h["top1"] == pytest.approx(row["top1"]) and h["train_loss"] == pytest.approx(row["train_loss"])
        assert {"lr", "top5", "img_per_s"} <= set(h)
    summary = logged["summary"]
    assert summary["top1"] == pytest.approx(result["metrics"]["top1"])
    assert summary["best_top1"] == pytest.approx(result["metrics"]["best_top1"])
    assert summary["params"] == result["params"] and summary["gflops"] == result["gflops"]
    assert summary["wall_time_s"] > 0
    assert result["wandb_run_id"] == run.run_id


def test_unreachable_wandb_neither_stops_nor_delays_training(tiny, tmp_path, monkeypatch):
    import time

    from ladder.track import tracking

    monkeypatch.setenv("WANDB_MODE", "online")  # asked for online, but the host is unreachable
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    start_s = []  # how long the W&B run took to start (not the training: a busy CPU slows that)
    init = tracking.WandbTracker.__init__

    def timed_init(self, *args, **kwargs):
        t0 = time.monotonic()
        init(self, *args, **kwargs)
        start_s.append(time.monotonic() - t0)

    monkeypatch.setattr(tracking.WandbTracker, "__init__", timed_init)
    result = train(tiny("micro", "logger=wandb"), tmp_path)
    assert result["status"] == "completed"
    assert len(start_s) == 1 and start_s[0] < 25  # wandb.init's own timeout (30 s) not waited out
    assert list((tmp_path / "wandb").glob("offline-run-*")), "fell back to an offline run"


# ----------------------------------------------------------------------------- Hydra entry point
def _train_py(args: list[str], cwd: Path, cache_dir: Path, timeout: int = 300, **env: str):
    env = {**os.environ, "LADDER_CACHE": str(cache_dir), "WANDB_MODE": "offline", **env}
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_train_py_runs_a_rung_into_hydras_run_dir(tmp_path, cache_dir):
    """On one compute thread, the rung that crashed oneDNN: torch 2.14's oneDNN double-frees in
    the backward of this tiny channels_last net at one thread (the process aborts); the trainer
    trains contiguous there."""
    proc = _train_py(["+rung=inverted_bottleneck", *tiny_overrides(cache_dir), "experiment=t"],
                     tmp_path, cache_dir, OMP_NUM_THREADS="1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "outputs/t/inverted_bottleneck/seed0/result.json").read_text())
    assert result["status"] == "completed" and result["device"].endswith(", 1 threads")
    assert result["rung"] == "inverted_bottleneck" and "+rung=inverted_bottleneck" in result["command"]
    assert "[ladder] epoch 1/1" in proc.stdout


def test_two_job_multirun_writes_both_results(tmp_path, cache_dir):
    proc = _train_py(["-m", "+rung=resnet50,micro", *tiny_overrides(cache_dir), "experiment=sw"],
                     tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for rung in ("resnet50", "separate_downsampling"):
        result = json.loads((tmp_path / f"multirun/sw/{rung}/seed0/result.json").read_text())
        assert result["status"] == "completed" and result["sweep_group"] == "sw"


def test_failed_multirun_job_loses_no_other_job(tmp_path, cache_dir):
    # kernel11 at 32 px with stride-2 downsampling works; a job with an impossible batch fails.
    proc = _train_py(["-m", "+rung=resnet50", "seed=0,1", *tiny_overrides(cache_dir),
                      "experiment=fail", "trainer.global_batch=1000"], tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for seed in (0, 1):
        result = json.loads((tmp_path / f"multirun/fail/resnet50/seed{seed}/result.json").read_text())
        assert result["status"] == "failed" and "smaller than one" in result["error"]


def test_unknown_rung_and_missing_rung_fail_clearly(tmp_path, cache_dir):
    # Hydra's error for an unknown option of a group (also recipe=adam, tests/test_faults.py)
    proc = _train_py(["+rung=resnet51"], tmp_path, cache_dir, timeout=60)
    assert proc.returncode != 0 and "resnet50" in proc.stderr and "Traceback" not in proc.stderr
    # a ConfigError when the config is typed (also any invalid value, tests/test_faults.py)
    proc = _train_py([], tmp_path, cache_dir, timeout=60)
    assert proc.returncode == 2 and "no rung chosen" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.pt"))


def test_a_run_continues_in_fp16_from_an_fp32_checkpoint(tiny, tmp_path, capsys):
    first = train(tiny("micro", "trainer.precision=fp32"), tmp_path)
    (tmp_path / "result.json").unlink()  # one more epoch, in fp16 (CPU autocast, grad scaler)
    again = train(tiny("micro", "trainer.precision=fp16", "trainer.epochs=2"), tmp_path)
    assert again["status"] == "completed" and len(again["history"]) == 2
    assert again["history"][0] == first["history"][0]
    assert "no fp16 grad-scaler state" in capsys.readouterr().err
