"""Beyond one process, on CPU: torchrun with two gloo ranks against one process, sharded
evaluation, and Hydra's submitit launcher (local executor; the SLURM configs' sbatch script).

Every case starts real processes (torchrun, train.py, submitit), so each takes 5-15 s here;
the slowest are marked ``slow``: CI runs them, the quick set (-m "not slow") leaves them out.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, descendants, tiny_overrides, write_image_folder
from ladder.ladders.compose import compose_config
from ladder.train.trainer import StopFlag, Trainer, train

# Exact equivalence needs the same maths on every rank: fp32 on the CPU, and no per-rank
# randomness (stochastic depth, mixup/cutmix draw from the rank-seeded global generator).
# Both data paths give N ranks exactly one process's images: the per-image loader seeds each
# sample by (seed, epoch, index), the device path cuts each rank's rows from the same augmented
# global batch (tests/test_devicedata.py checks it pixel for pixel); the loader is run here.
EXACT = ["trainer.device=cpu", "model.drop_path_rate=0", "recipe.mixup=0", "recipe.cutmix=0",
         "data.pipeline=loader"]
ATOL = 1e-5
# A hung collective shows as a run past this; it is generous so that a busy 2-core CI machine
# (two ranks importing torch at once, then a few steps) never looks like one.
HANG_S = 180
DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
             "MASTER_PORT", "TORCHELASTIC_RUN_ID")


# ----------------------------------------------------------------------------- helpers
def _env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh launch: no torchrun, submitit or SLURM variables of ours."""
    env = {k: v for k, v in os.environ.items()
           if k not in DIST_VARS and not k.startswith(("SUBMITIT_", "SLURM_"))}
    env.update(LADDER_CACHE=str(cache_dir), WANDB_MODE="offline", OMP_NUM_THREADS="1", **extra)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float):
    """Run ``cmd``; past ``timeout`` kill it and every process it started (torchrun's workers,
    submitit's jobs), so a hung collective leaves nothing behind, and fail."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[2:8])} ... did not finish in {timeout:.0f}s (a hung "
                    f"collective?)\n{out[-1500:]}\n{err[-1500:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _rank_of(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((v[5:].decode() for v in env if v.startswith(b"RANK=")), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc: int, args: list[str], cwd: Path, cache_dir: Path, timeout: float = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(REPO / "train.py"),
           *args]
    proc = _run(cmd, cwd, _env(cache_dir), timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def train_py(args: list[str], cwd: Path, cache_dir: Path, timeout: float = 240, **env: str):
    return _run([sys.executable, str(REPO / "train.py"), *args], cwd, _env(cache_dir, **env),
                timeout)


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return state["model"]


def typed(rung: str, overrides: list[str]):
    return OmegaConf.to_object(compose_config(rung, overrides))


def micro_overrides(cache_dir: Path, per_device: int) -> list[str]:
    # tiny_overrides: global batch 16, 2 optimizer steps on the 10-class demo set (30 val images)
    return tiny_overrides(cache_dir) + EXACT + [f"trainer.batch_size={per_device}"]


# ----------------------------------------------------------------------------- runs shared by tests
@pytest.fixture(scope="module")
def one_process(tmp_path_factory, cache_dir) -> Path:
    """The micro rung (LayerNorm) in one process: 16 images per step."""
    out = tmp_path_factory.mktemp("one-process")
    train(typed("micro", micro_overrides(cache_dir, 16)), out)
    return out


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, cache_dir) -> Path:
    """The same run under torchrun: 2 gloo ranks x 8 images per step."""
    out = tmp_path_factory.mktemp("two-processes")
    torchrun(2, ["+rung=micro", *micro_overrides(cache_dir, 8), f"hydra.run.dir={out}"],
             out, cache_dir)
    return out


# ----------------------------------------------------------------------------- torchrun
@pytest.mark.parametrize("per_device", [
    8,  # 2 ranks x 8 = 16
    pytest.param(4, marks=pytest.mark.slow, id="4-accum2"),  # 2 ranks x 4 x 2 accumulation
])
def test_two_ranks_reach_the_weights_of_one_process(request, tmp_path, cache_dir, one_process,
                                                    per_device):
    if per_device == 8:
        two = request.getfixturevalue("two_processes")
    else:
        two = tmp_path / "two"
        torchrun(2, ["+rung=micro", *micro_overrides(cache_dir, per_device),
                     f"hydra.run.dir={two}"], tmp_path, cache_dir)
    one_result, two_result = result(one_process), result(two)
    assert one_result["world_size"] == 1 and two_result["world_size"] == 2
    assert two_result["status"] == "completed"
    a, b = weights(one_process), weights(two)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=ATOL, rtol=0, msg=lambda m: f"{key}: {m}")
    # The comparison means something: two steps moved every tensor far more than the tolerance.
    init = Trainer(typed("micro", micro_overrides(cache_dir, 16)), tmp_path / "init")
    init.setup()
    start = init.model.state_dict()
    moved = {k: (a[k].float() - start[k].float()).abs().max().item() for k in a
             if a[k].is_floating_point()}
    assert min(moved.values()) > 10 * ATOL, min(moved.items(), key=lambda kv: kv[1])
    # Same weights, same evaluation: every val image counted once on two ranks.
    one_row, two_row = one_result["history"][0], two_result["history"][0]
    assert one_row["val_images"] == two_row["val_images"] == 30
    assert two_row["top1"] == one_row["top1"]
    assert two_row["val_loss"] == pytest.approx(one_row["val_loss"], rel=1e-4)


def test_train_loss_is_the_mean_over_all_ranks(one_process, two_processes):
    assert result(two_processes)["history"][0]["train_loss"] == pytest.approx(
        result(one_process)["history"][0]["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_sharded_evaluation_counts_each_val_image_once(tmp_path, cache_dir):
    # 3 classes x 3 val images = 9, not divisible by 2 ranks: shards of 5 and 4, no padding.
    # resnet50 has BatchNorm: its running statistics must be rank 0's (the checkpoint's).
    root = write_image_folder(tmp_path / "folder")
    overrides = ["logger=none", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                 "data.image_size=32", "data.num_workers=0", "model.width_multiplier=0.0625",
                 "model.stem_stride=2", "trainer.batch_size=4", "trainer.global_batch=8",
                 "trainer.epochs=1", "trainer.max_steps_per_epoch=2", "trainer.progress=false",
                 "trainer.by_recipe.torchvision.epochs=1",
                 "trainer.device=cpu"]
    run = tmp_path / "run"
    torchrun(2, ["+rung=resnet50", *overrides, f"hydra.run.dir={run}"], tmp_path, cache_dir)
    saved = result(run)
    row = saved["history"][0]
    assert saved["world_size"] == 2 and row["val_images"] == 9
    assert (row["top1"] * 9 / 100) == pytest.approx(round(row["top1"] * 9 / 100), abs=1e-9)
    # One process evaluating the same weights on the whole val set gets the same numbers.
    single = Trainer(typed("resnet50", overrides), tmp_path / "single")
    single.setup()
    single.model.load_state_dict(weights(run))
    ref = single.evaluate(single.model)
    assert ref["val_images"] == 9
    assert row["top1"] == pytest.approx(ref["top1"]) and row["top5"] == pytest.approx(ref["top5"])
    assert row["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_a_rank_without_val_images_does_not_hang_a_batchnorm_rung(tmp_path, cache_dir):
    # One val image for two ranks: rank 1's shard is empty.
    root = write_image_folder(tmp_path / "folder", classes=("a",), train=8, val=1)
    run = tmp_path / "run"
    torchrun(2, ["+rung=resnet50", "logger=none", "data=imagefolder", f"data.root={root}",
                 "data.num_classes=1", "data.image_size=32", "data.num_workers=0",
                 "model.width_multiplier=0.0625", "model.stem_stride=2", "trainer.batch_size=4",
                 "trainer.global_batch=8", "trainer.epochs=1", "trainer.progress=false",
                 "trainer.by_recipe.torchvision.epochs=1",
                 "trainer.device=cpu", f"hydra.run.dir={run}"], tmp_path, cache_dir,
             timeout=HANG_S)
    assert result(run)["history"][0]["val_images"] == 1


@pytest.mark.slow
def test_a_signal_on_one_rank_stops_all_ranks_at_the_same_step(tmp_path, cache_dir):
    # SLURM signals every task of a job, but not at the same instant: model the worst case.
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(REPO / "train.py"),
           "+rung=micro", *micro_overrides(cache_dir, 8), "trainer.epochs=1000",
           f"hydra.run.dir={run}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(cache_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + HANG_S
        while not (run / "checkpoints" / "last.pt").exists():  # the first epoch is done
            assert proc.poll() is None and time.time() < deadline, "the run did not start"
            time.sleep(0.2)
        rank1 = [pid for pid in descendants(proc.pid) if _rank_of(pid) == "1"]
        assert len(rank1) == 1
        os.kill(rank1[0], signal.SIGUSR1)
        out, err = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        out, err = "", ""
    finally:
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate()
    assert "stopped by signal" in out, f"hung or failed:\n{out[-1500:]}\n{err[-1500:]}"
    assert proc.returncode != 0  # the workers exit 75 (requeue me); torchrun reports a failure
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] > 0


# ----------------------------------------------------------------------------- submitit
SUBMITIT_LOCAL = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                  "hydra.launcher.gpus_per_node=0"]


@pytest.mark.slow
def test_submitit_local_multirun_of_two_rungs_writes_both_results(tmp_path, cache_dir):
    sweep = tmp_path / "sw"
    proc = train_py(["-m", *SUBMITIT_LOCAL, "+rung=resnet50,micro", *tiny_overrides(cache_dir),
                     f"hydra.sweep.dir={sweep}"], tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rung in ("resnet50", "separate_downsampling"):
        saved = result(sweep / rung / "seed0")
        assert saved["status"] == "completed" and saved["rung"] == rung
        assert saved["sweep_group"] == "sw" and saved["world_size"] == 1
        assert (sweep / rung / "seed0" / "checkpoints" / "last.pt").exists()
    assert len(list((sweep / ".submitit").glob("*/*_0_log.out"))) == 2  # one submitit job each


@pytest.mark.slow
def test_a_two_task_submitit_job_is_one_data_parallel_run(tmp_path, cache_dir):
    # What a SLURM job with tasks_per_node = GPUs does, here with 2 CPU tasks on this node.
    sweep = tmp_path / "sw"
    proc = train_py(["-m", *SUBMITIT_LOCAL, "hydra.launcher.tasks_per_node=2", "+rung=micro",
                     *micro_overrides(cache_dir, 8), f"hydra.sweep.dir={sweep}"],
                    tmp_path, cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = result(sweep / "separate_downsampling" / "seed0")
    assert saved["status"] == "completed" and saved["world_size"] == 2
    assert saved["history"][0]["val_images"] == 30


# ----------------------------------------------------------------------------- SLURM configs
def test_slurm_launcher_config_runs_one_task_per_gpu():
    launcher = compose_config("micro", ["hydra/launcher=slurm"],
                              return_hydra_config=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == 1 and launcher.tasks_per_node == launcher.gpus_per_node == 8
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s >= 60
    assert launcher.additional_parameters.signal == f"USR1@{launcher.signal_delay_s}"
    multi = compose_config("micro", ["hydra/launcher=slurm_multinode"],
                           return_hydra_config=True).hydra.launcher
    assert multi.nodes > 1 and multi.tasks_per_node == multi.gpus_per_node


@pytest.mark.slow
def test_slurm_multirun_submits_a_requeueable_array_that_signals_the_trainer(tmp_path, cache_dir):
    """The real path (Hydra -> submitit launcher -> submitit -> sbatch) with a stand-in `sbatch`
    that keeps the script and refuses the job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "job.sbatch"
    for tool in ("sbatch", "srun"):  # submitit looks for srun first
        (bin_dir / tool).write_text(f'#!/bin/sh\ncp "$1" {script}\necho "no cluster here" >&2\n'
                                    "exit 1\n")
        (bin_dir / tool).chmod(0o755)
    proc = train_py(["-m", "hydra/launcher=slurm_multinode", "+rung=resnet50,micro",
                     "preset=imagenet", "data.root=/data/imagenet", "hydra.launcher.partition=gpu",
                     "hydra.launcher.account=proj", f"hydra.sweep.dir={tmp_path / 'sw'}"],
                    tmp_path, cache_dir, timeout=120, PATH=f"{bin_dir}:{os.environ['PATH']}")
    assert "no cluster here" in proc.stderr, proc.stderr[-3000:]
    text = script.read_text()
    for flag in ("--nodes=4", "--ntasks-per-node=8", "--gpus-per-node=8", "--partition=gpu",
                 "--account=proj", "--requeue", "--signal=USR1@", "--time=", "--array=0-1%"):
        assert f"#SBATCH {flag}" in text, (flag, text)
    assert "export SUBMITIT_PREEMPT_SIGNAL=USR1" in text  # submitit requeues on that signal too
    # ... and it is a signal the trainer checkpoints on.
    sig = getattr(signal, "SIG" + text.split("--signal=")[1].split("@")[0])
    flag = StopFlag()
    flag.install()
    try:
        assert getattr(signal.getsignal(sig), "__self__", None) is flag
    finally:
        flag.restore()
