"""Never lose a run: kill -9, SIGTERM, crashes mid-write, corrupt files, NaN, bad data, bad
config, W&B trouble, unwritable dirs. CPU, tiny model, demo data."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FINISHED_RUN, REPO, tiny_overrides, typed_config, write_image_folder
from ladder.utils import checkpoint as ckpt
from ladder.data.loaders import DataError, build_datasets
from ladder.train.trainer import PREEMPTED_EXIT_CODE, train

# 80 demo images, batch 8 x accumulation 2: 5 optimizer steps per epoch, 3 epochs, a checkpoint
# after every step (so a kill can land mid-epoch and resume mid-epoch).
FAULT_RUN = ["+rung=micro", "trainer.epochs=3", "trainer.max_steps_per_epoch=null",
             "trainer.checkpoint_every_steps=1", "experiment=fault"]


def _run(tmp: Path, cache_dir: Path, extra=(), env=None, timeout=240):
    """``train.py`` in its own process: what a kill -9, a signal or the command line needs."""
    full_env = {**os.environ, "LADDER_CACHE": str(cache_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *tiny_overrides(cache_dir), *FAULT_RUN,
         f"hydra.run.dir={tmp}", *extra],
        env=full_env, capture_output=True, text=True, timeout=timeout)


def _rerun(tmp: Path, cache_dir: Path, extra=()) -> dict:
    """The same run again in this process (train.py's config, ``train`` on the same folder):
    a fresh trainer that finds the folder's checkpoint or result."""
    return train(typed_config(None, [*tiny_overrides(cache_dir), *FAULT_RUN, *extra]), tmp)


def _final(tmp: Path):
    state = torch.load(tmp / "checkpoints" / "last.pt", weights_only=True)
    return state, json.loads((tmp / "result.json").read_text())


@pytest.fixture(scope="module", params=[
    "device", pytest.param("loader", marks=pytest.mark.slow)])  # the loader path: whole suite
def uninterrupted(request, tmp_path_factory, cache_dir):
    """The reference run, on the in-memory device data path and on the per-image loader."""
    run_dir = tmp_path_factory.mktemp(f"uninterrupted-{request.param}")
    _rerun(run_dir, cache_dir, extra=[f"data.pipeline={request.param}"])
    return (*_final(run_dir), f"data.pipeline={request.param}")


def test_kill_9_mid_epoch_then_rerun_is_bit_for_bit(tmp_path, cache_dir, uninterrupted, capsys):
    pipeline = uninterrupted[2]
    kill_at = random.Random(1234).choice([2, 3, 4, 7, 8, 12])  # never an epoch's last step
    killed = _run(tmp_path, cache_dir, extra=[pipeline],
                  env={"LADDER_FAULT_KILL_AT_STEP": str(kill_at)})
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "result.json").exists()
    partial = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert partial["step"] == kill_at - 1 and partial["batch_in_epoch"] > 0  # mid-epoch
    capsys.readouterr()
    _rerun(tmp_path, cache_dir, extra=[pipeline])
    assert f"step {kill_at - 1}" in capsys.readouterr().out  # "resumed from ... at epoch e, step s"
    state, result = _final(tmp_path)
    ref_state, ref_result, _ = uninterrupted
    for key, value in ref_state["model"].items():
        assert torch.equal(value, state["model"][key]), key
    assert result["metrics"] == ref_result["metrics"]
    assert [r["train_loss"] for r in result["history"]] == [r["train_loss"] for r in ref_result["history"]]


def test_sigterm_checkpoints_exits_for_requeue_and_resumes(tmp_path, cache_dir, uninterrupted,
                                                           capsys):
    pipeline = uninterrupted[2]
    stopped = _run(tmp_path, cache_dir, extra=["trainer.checkpoint_every_steps=0", pipeline],
                   env={"LADDER_FAULT_SIGTERM_AT_STEP": "7"})
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-2000:]
    assert "checkpoint written" in stopped.stdout
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 7 and state["epoch"] == 1  # mid-epoch 2, not an epoch-end checkpoint
    _rerun(tmp_path, cache_dir, extra=["trainer.checkpoint_every_steps=0", pipeline])
    state, result = _final(tmp_path)
    for key, value in uninterrupted[0]["model"].items():
        assert torch.equal(value, state["model"][key]), key
    assert result["metrics"] == uninterrupted[1]["metrics"]
    capsys.readouterr()
    again = _rerun(tmp_path, cache_dir, extra=[pipeline])  # completed: not retrained
    assert again["metrics"] == result["metrics"] and "already completed" in capsys.readouterr().out


# train.py in a process whose GMAC count (run while result.json is made, after the last step)
# first sends the process SIGTERM.
SIGNAL_IN_FINISH = """
import os, runpy, signal, sys
from ladder.train import run_results

real = run_results.count_gmacs

def count_gmacs(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)

run_results.count_gmacs = count_gmacs
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_signal_while_the_result_is_written_loses_no_finished_run(tmp_path, cache_dir):
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_FINISH, *tiny_overrides(cache_dir), *FAULT_RUN,
         "trainer.epochs=1", f"hydra.run.dir={tmp_path}"],
        cwd=REPO, env={**os.environ, "LADDER_CACHE": str(cache_dir)}, capture_output=True,
        text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "completed"
    assert f"signal {signal.SIGTERM.value} arrived after the last step" in proc.stdout


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save({"step": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(ckpt.CheckpointError, match=f"cannot write {path}.*No space left"):
        ckpt.save({"step": 2}, path)
    monkeypatch.undo()
    assert ckpt.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_corrupt_checkpoint_names_the_file_and_falls_back(tmp_path, capsys):
    path = tmp_path / "last.pt"
    ckpt.save({"step": 1}, path)
    ckpt.save({"step": 2}, path)  # step 1 is kept as prev.pt
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ckpt.CheckpointError, match=f"checkpoint {path} is unreadable or corrupt"):
        ckpt.load(path)
    state, used = ckpt.load_latest(path)
    assert state["step"] == 1 and used == ckpt.previous_path(path)
    assert str(path) in capsys.readouterr().out
    ckpt.previous_path(path).write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match="no usable checkpoint.*last.pt.*prev.pt"):
        ckpt.load_latest(path, warn=lambda m: None)


def test_checkpoint_never_executes_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)  # written by someone else's pickle
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load(path)
    assert not (tmp_path / "pwned").exists()


def test_nan_loss_stops_with_step_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    from ladder.train import trainer as trainer_mod

    cfg = tiny("micro", "trainer.epochs=2", "trainer.max_steps_per_epoch=null")
    monkeypatch.setattr(trainer_mod.Trainer, "inject_nan_at", 7)  # in epoch 2 (5 steps/epoch)
    with pytest.raises(trainer_mod.NonFiniteLoss, match="optimizer step 7 .*epoch 2"):
        train(cfg, tmp_path)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_from_the_command_line_is_one_sentence(tmp_path, cache_dir):
    proc = _run(tmp_path, cache_dir, extra=["recipe.lr=1e30", "recipe.warmup_epochs=0",
                                            "trainer.log_every=1"])
    assert proc.returncode == 1 and "became NaN or inf at optimizer step" in proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- bad images
def _folder_with(tmp_path, name: str, content: bytes, split: str = "train") -> Path:
    root = write_image_folder(tmp_path / "imgs")
    (root / split / "a" / name).write_bytes(content)
    return root


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 not really a jpeg"])
def test_unreadable_jpeg_fails_naming_the_file(tiny, tmp_path, content):
    root = _folder_with(tmp_path, "broken.jpg", content)
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3")
    train_set, _, _ = build_datasets(cfg.data, cfg.recipe)
    index = [i for i, (p, _) in enumerate(train_set.samples) if p.endswith("broken.jpg")][0]
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg.*data\.bad_images=skip"):
        train_set[index]


def test_unreadable_jpeg_skipped_and_counted_when_asked(tiny, tmp_path, capsys):
    root = _folder_with(tmp_path, "broken.jpg", b"")
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
               "data.bad_images=skip")
    train_set, _, _ = build_datasets(cfg.data, cfg.recipe)
    for i in range(len(train_set)):
        image, _ = train_set[i]
        assert image.shape[-1] == 32
    assert train_set.skipped == 1
    assert "skipping unreadable image" in capsys.readouterr().err


def test_training_run_with_a_corrupt_jpeg_fails_with_its_path(tmp_path, cache_dir):
    root = _folder_with(tmp_path, "zero.jpg", b"", split="val")  # evaluation reads every image
    proc = _run(tmp_path / "run", cache_dir, extra=["data=imagefolder", f"data.root={root}",
                                                     "data.num_classes=3", "trainer.epochs=1"])
    assert proc.returncode == 2 and "zero.jpg" in proc.stderr and "Traceback" not in proc.stderr
    failed = json.loads((tmp_path / "run" / "result.json").read_text())
    assert failed["status"] == "failed" and "zero.jpg" in failed["error"]


def test_missing_val_stops_the_run_naming_the_folder(tiny, tmp_path):
    root = write_image_folder(tmp_path / "imgs")
    import shutil
    shutil.rmtree(root / "val")
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3")
    with pytest.raises(DataError, match=re.escape(f"{root} has no 'val/' folder")):
        train(cfg, tmp_path / "run")  # train.py prints DataError's sentence and exits 2 (above)


# ----------------------------------------------------------------------------- bad config
# Every value is checked when train.py types the composed config, before train() is called; the
# error is one sentence naming the key. What train.py makes of these two kinds of error (exit
# status, one sentence, no traceback, no files) is checked from the command line in
# tests/test_train.py: an unknown rung (Hydra's) and no rung at all (a ConfigError).
@pytest.mark.parametrize("override,named", [
    ("recipe.lr=-0.1", "recipe.lr=-0.1"), ("trainer.batch_size=0", "trainer.batch_size=0"),
    ("recipe=adam", "Could not find 'recipe/adam'"), ("model.kernel_size=4", "model.kernel_size=4"),
])
def test_invalid_config_is_refused_before_any_work_naming_the_key(cache_dir, override, named):
    from hydra.errors import MissingConfigException

    from ladder.nets.config import ConfigError

    with pytest.raises((ConfigError, MissingConfigException), match=re.escape(named)) as err:
        typed_config(None, [*tiny_overrides(cache_dir), *FAULT_RUN, override])
    assert "\n" not in str(err.value) or err.type is MissingConfigException


# ----------------------------------------------------------------------------- unwritable dirs
def test_unwritable_checkpoint_dir_is_a_clear_error(finished_run, tmp_path, monkeypatch):
    run = finished_run.copy_to(tmp_path / "run")  # a completed run (2 epochs) with its files
    before = (run / "checkpoints" / "last.pt").read_bytes()
    (run / "result.json").unlink()  # train a third epoch in the same dir, with a full disk
    cfg = typed_config(FINISHED_RUN[0], [*finished_run.overrides, "trainer.epochs=3",
                                         "logger=none"])
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ckpt.CheckpointError, match="cannot write .*last.pt.*No space left"):
        train(cfg, run)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert finished_run.result["status"] == "completed"


def test_output_dir_that_is_a_file_is_a_clear_error(tmp_path, cache_dir):
    blocker = tmp_path / "run"
    blocker.write_text("I am a file")
    proc = _run(blocker / "inner", cache_dir, timeout=60)
    assert proc.returncode != 0
    assert blocker.read_text() == "I am a file"
