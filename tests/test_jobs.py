"""scripts/sweep.py on ladder/train/jobs.py: real train.py processes into OUT/<rung>/seed<S>/, every
job runs and is reported when jobs fail, and a rerun resumes (a completed job is not retrained).
The GPU placement, on the CPU: the command and environment each job receives."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from conftest import REPO, tiny_overrides

sys.path.insert(0, str(REPO / "scripts"))


@pytest.mark.slow
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
    log = (out / "depthwise" / "seed0" / "train.log").read_text()
    assert sweep.main(args) == 0  # the rerun resumes: nothing to do, no process started
    assert (out / "depthwise" / "seed0" / "result.json").stat().st_mtime_ns == mtime
    assert (out / "depthwise" / "seed0" / "train.log").read_text() == log
    printed = capsys.readouterr().out
    assert "depthwise seed 0: already completed (top-1 " in printed and "2 ok, 0 failed" in printed

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


# ----------------------------------------------------------------------------- GPU placement
# Each job's command and environment as the sweep hands them to subprocess.Popen, recorded on
# the CPU: which GPUs (CUDA_VISIBLE_DEVICES) and which rendezvous port every job holds while it
# runs, and how many jobs share a GPU at the busiest moment.
class Recorder:
    """Stands in for subprocess.Popen: each "process" holds its GPUs for ``hold`` seconds."""

    def __init__(self, hold: float = 0.3):
        self.hold, self.lock = hold, threading.Lock()
        self.calls: list[tuple[list[str], dict]] = []
        self.running, self.peak = 0, 0
        self.on_gpu: Counter = Counter()
        self.peak_on_gpu: Counter = Counter()
        self.ports: set[str] = set()
        self.port_clash = False

    def __call__(self, cmd, stdout=None, stderr=None, env=None, cwd=None):
        return self.Process(self, list(cmd), dict(env))

    class Process:
        def __init__(self, rec, cmd, env):
            self.rec, self.cmd, self.env = rec, cmd, env
            self.gpus = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
            self.port = next((a.split(":")[-1] for a in cmd if a.startswith("--rdzv_endpoint=")),
                             None)
            with rec.lock:
                rec.calls.append((cmd, env))
                rec.running += 1
                rec.peak = max(rec.peak, rec.running)
                for gpu in self.gpus:
                    rec.on_gpu[gpu] += 1
                    rec.peak_on_gpu[gpu] = max(rec.peak_on_gpu[gpu], rec.on_gpu[gpu])
                if self.port is not None:
                    rec.port_clash |= self.port in rec.ports
                    rec.ports.add(self.port)

        def wait(self):
            time.sleep(self.rec.hold)
            with self.rec.lock:
                self.rec.running -= 1
                for gpu in self.gpus:
                    self.rec.on_gpu[gpu] -= 1
                self.rec.ports.discard(self.port)
            return 0

        def send_signal(self, sig):
            pass


@pytest.fixture
def node(monkeypatch):
    """A machine with ``gpus`` GPUs and 16 cores as the runner sees them; Popen recorded."""
    from ladder.train import jobs

    def make(gpus: int, hold: float = 0.3) -> Recorder:
        rec = Recorder(hold)
        monkeypatch.setattr(jobs, "visible_gpus", lambda: [str(i) for i in range(gpus)])
        monkeypatch.setattr(jobs, "available_cores", lambda: 16)
        monkeypatch.setattr(jobs.subprocess, "Popen", rec)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        return rec

    return make


def sweep_main(args, tmp_path):
    import sweep

    return sweep.main([*args, "--out", str(tmp_path / "sweep"), "--", "logger=none"])


def first_line(capsys) -> str:
    return capsys.readouterr().out.splitlines()[0]


def test_eight_gpus_run_eight_jobs_at_once_each_on_its_own_gpu(node, tmp_path, capsys):
    rec = node(8)
    assert sweep_main(["--rungs", "ladder", "--seeds", "0", "--gpus", "auto"], tmp_path) == 0
    line = first_line(capsys)
    assert "17 rungs x 1 seeds: 17 jobs, 8 at once, 2 threads each" in line
    assert "on GPUs 0,1,2,3,4,5,6,7: one job per GPU" in line
    assert len(rec.calls) == 17 and rec.peak == 8  # eight at once ...
    assert set(rec.peak_on_gpu) == {str(i) for i in range(8)}  # ... on all eight GPUs ...
    assert max(rec.peak_on_gpu.values()) == 1  # ... never two on one
    for cmd, env in rec.calls:
        assert cmd[1].endswith("train.py") and "torch.distributed.run" not in cmd
        assert len(env["CUDA_VISIBLE_DEVICES"].split(",")) == 1
        assert env["OMP_NUM_THREADS"] == "2"  # 16 cores / 8 jobs


def test_jobs_alone_spread_over_the_gpus(node, tmp_path, capsys):
    rec = node(8)
    assert sweep_main(["--rungs", "milestones", "--seeds", "0", "--jobs", "3"], tmp_path) == 0
    assert "7 jobs, 3 at once, 5 threads each, on GPUs 0,1,2,3,4,5,6,7: one job per GPU" in \
        first_line(capsys)
    assert rec.peak == 3 and max(rec.peak_on_gpu.values()) == 1


def test_two_gpus_per_job_run_under_torchrun_on_pairs_with_their_own_ports(node, tmp_path,
                                                                           capsys):
    rec = node(4)
    assert sweep_main(["--rungs", "milestones", "--seeds", "0", "--gpus-per-job", "2"],
                      tmp_path) == 0
    line = first_line(capsys)
    assert "7 jobs, 2 at once, 4 threads each per process" in line
    assert "2 GPUs per job under torchrun (0,1 | 2,3)" in line
    assert rec.peak == 2 and max(rec.peak_on_gpu.values()) == 1 and not rec.port_clash
    for cmd, env in rec.calls:
        assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
                           "--nproc_per_node=2", "--rdzv_backend=c10d"]
        assert cmd[6].startswith("--rdzv_endpoint=localhost:") and cmd[8].endswith("train.py")
        assert env["CUDA_VISIBLE_DEVICES"] in ("0,1", "2,3")
        assert env["OMP_NUM_THREADS"] == "4"  # 16 cores / (2 jobs x 2 processes)


def test_two_jobs_share_each_gpu(node, tmp_path, capsys):
    rec = node(4)
    assert sweep_main(["--rungs", "milestones", "--seeds", "0,1", "--gpus", "1,3",
                       "--jobs-per-gpu", "2"], tmp_path) == 0
    assert "14 jobs, 4 at once, 4 threads each, on GPUs 1,3: 2 jobs per GPU" in first_line(capsys)
    assert rec.peak == 4 and rec.peak_on_gpu == Counter({"1": 2, "3": 2})
    assert {env["CUDA_VISIBLE_DEVICES"] for _, env in rec.calls} == {"1", "3"}
    rec = node(2)  # --jobs alone: as many per GPU as it takes
    assert sweep_main(["--rungs", "milestones", "--seeds", "0", "--jobs", "4"], tmp_path) == 0
    assert "4 at once, 4 threads each, on GPUs 0,1: 2 jobs per GPU" in first_line(capsys)
    assert rec.peak == 4 and rec.peak_on_gpu == Counter({"0": 2, "1": 2})


def test_without_gpus_jobs_get_no_cuda_visible_devices(node, tmp_path, capsys):
    rec = node(0)
    assert sweep_main(["--rungs", "milestones", "--seeds", "0", "--jobs", "2"], tmp_path) == 0
    line = first_line(capsys)
    assert line.endswith(f"7 jobs, 2 at once, 8 threads each, into {tmp_path / 'sweep'}")
    assert rec.peak == 2 and all("CUDA_VISIBLE_DEVICES" not in env for _, env in rec.calls)
    rec = node(8)  # --gpus none: no placement, as before
    assert sweep_main(["--rungs", "milestones", "--jobs", "2", "--gpus", "none"], tmp_path) == 0
    assert "GPUs not placed" in first_line(capsys)
    assert all("CUDA_VISIBLE_DEVICES" not in env for _, env in rec.calls)


@pytest.mark.slow
def test_two_torchrun_jobs_at_once_train_on_their_own_ports(tmp_path, cache_dir, monkeypatch,
                                                              capsys):
    """Real processes: two jobs of two GPUs each on a node of four (standing in for the CPU
    here, trainer.device=cpu) run as torchrun's two-process groups side by side."""
    import sweep

    from ladder.train import jobs

    monkeypatch.setattr(jobs, "visible_gpus", lambda: ["0", "1", "2", "3"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "sweep"
    assert sweep.main(["--rungs", "depthwise,kernel7", "--gpus-per-job", "2", "--threads", "1",
                       "--out", str(out), "--", *tiny_overrides(cache_dir), "trainer.device=cpu",
                       "trainer.channels_last=false"]) == 0
    printed = capsys.readouterr().out
    assert "2 jobs, 2 at once" in printed and "2 ok, 0 failed" in printed
    for rung in ("depthwise", "kernel7"):
        result = json.loads((out / rung / "seed0" / "result.json").read_text())
        assert result["status"] == "completed" and result["world_size"] == 2


def test_the_visible_gpus_are_those_cuda_visible_devices_names(monkeypatch):
    import torch

    from ladder.train import jobs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # e.g. SLURM's allocation
    assert jobs.visible_gpus() == ["3", "5"]
    placement, _ = jobs.plan_placement("1,")
    assert placement.groups == (("5",),)  # indices count among the visible GPUs
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert jobs.visible_gpus() == ["0", "1"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert jobs.visible_gpus() == []


@pytest.mark.parametrize("args, gpus, message", [
    (["--gpus", "0,9"], 8, "--gpus 0,9: there is no GPU 9 here, 8 are visible (0-7)."),
    (["--gpus", "16"], 8, "--gpus 16 asks for 16 GPUs, but 8 are visible (0-7)."),
    (["--gpus", "2"], 0, "--gpus 2 asks for 2 GPUs, but no CUDA device is visible."),
    (["--gpus", "0,0"], 8, "--gpus 0,0 names GPU 0 twice"),
    (["--gpus", "all"], 8, "--gpus all: give auto, none, a number of GPUs, or GPU indices"),
    (["--gpus-per-job", "4", "--gpus", "0,1"], 8,
     "--gpus-per-job 4 is more than the 2 GPUs placed (--gpus 0,1)."),
    (["--gpus-per-job", "2"], 0,
     "--gpus-per-job 2 places jobs on GPUs, but none are placed (no CUDA device is visible)."),
    (["--jobs-per-gpu", "0"], 8, "--jobs-per-gpu 0: at least one job must run on a GPU."),
    (["--gpus-per-job", "0"], 8, "--gpus-per-job 0: a job needs at least one GPU."),
    (["--jobs", "0"], 8, "--jobs 0: at least one job must run at a time."),
])
def test_a_bad_placement_is_refused_in_one_sentence_before_any_job(node, tmp_path, capsys, args,
                                                                   gpus, message):
    rec = node(gpus)
    with pytest.raises(SystemExit) as stop:
        sweep_main(["--rungs", "milestones", *args], tmp_path)
    assert stop.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert not rec.calls and not (tmp_path / "sweep").exists()


def test_a_job_pinned_to_one_gpu_is_refused_with_a_placement(node, tmp_path):
    rec = node(8)
    with pytest.raises(SystemExit, match="trainer.device=cuda:1 puts every job on one GPU"):
        sweep_main(["--rungs", "milestones", "--", "trainer.device=cuda:1"], tmp_path)
    assert not rec.calls


def test_sigterm_stops_the_running_jobs_and_starts_no_more(monkeypatch, tmp_path, capsys):
    """The runner passes SIGTERM on to its running jobs (which checkpoint and exit 75), starts
    none of the others and exits 75, so that rerunning (a requeue) resumes."""
    from ladder.train import jobs

    signalled = []

    class Process:
        def __init__(self, cmd, stdout=None, stderr=None, env=None, cwd=None):
            self.stopped = threading.Event()

        def wait(self):
            self.stopped.wait(30)
            return 75

        def send_signal(self, sig):
            signalled.append(sig)
            self.stopped.set()

    monkeypatch.setattr(jobs.subprocess, "Popen", Process)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    todo = [jobs.Job("micro", ("+rung=micro",), seed) for seed in range(4)]
    assert jobs.run_jobs(todo, tmp_path / "runs", at_once=2, threads=1) == 75
    timer.join()
    assert signalled == [signal.SIGTERM, signal.SIGTERM]
    assert "2 stopped or failed, 2 not started; rerun the command to resume" in \
        capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


# ----------------------------------------------------------------------------- one node on SLURM
def slurm_example(tmp_path, what, *overrides, **env):
    """scripts/slurm_example.sh under stand-ins for srun and scontrol: the srun command line
    (one argument a line), or None when srun was not called."""
    bin_dir, record = tmp_path / "bin", tmp_path / "srun.args"
    bin_dir.mkdir(exist_ok=True)
    record.unlink(missing_ok=True)
    (bin_dir / "srun").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho node001\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PRESET",
                                                                     "SEEDS", "GPUS_PER_JOB"))}
    proc = subprocess.run(["bash", "scripts/slurm_example.sh", what, *overrides], cwd=REPO,
                          env={**base, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "node001", **env},
                          capture_output=True, text=True, timeout=60)
    return proc, record.read_text().splitlines() if record.exists() else None


def test_the_slurm_example_runs_a_ladder_on_one_nodes_gpus(node, tmp_path, capsys):
    header = (REPO / "scripts" / "slurm_example.sh").read_text()
    assert "#SBATCH --nodes=1\n" in header and "#SBATCH --gpus-per-node=8\n" in header
    proc, ladder = slurm_example(tmp_path, "ladder", SLURM_JOB_NUM_NODES="1")
    assert proc.returncode == 0, proc.stderr
    assert ladder == ["--ntasks=1", "--kill-on-bad-exit=1", "python", "scripts/sweep.py",
                      "--rungs", "ladder", "--first", "milestones", "--seeds", "0,1,2", "--gpus",
                      "auto", "--gpus-per-job", "1", "--", "preset=imagenet",
                      "data.root=/data/imagenet"]
    proc, srun = slurm_example(tmp_path, "milestones", "trainer.epochs=3",
                               SLURM_JOB_NUM_NODES="1", PRESET="imagenette_gpu", SEEDS="0",
                               GPUS_PER_JOB="2")
    assert proc.returncode == 0, proc.stderr
    assert srun[srun.index("--seeds"):] == ["--seeds", "0", "--gpus", "auto", "--gpus-per-job",
                                            "2", "--", "preset=imagenette_gpu", "trainer.epochs=3"]

    # That sweep on an 8-GPU node: 51 jobs, eight at once, each on its own GPU.
    rec = node(8, hold=0.05)
    args = ladder[4:]
    args[args.index("--"):args.index("--")] = ["--out", str(tmp_path / "sweep")]
    import sweep

    assert sweep.main(args) == 0
    assert "51 jobs, 8 at once, 2 threads each, on GPUs 0,1,2,3,4,5,6,7: one job per GPU" in \
        capsys.readouterr().out
    assert len(rec.calls) == 51 and rec.peak == 8 and max(rec.peak_on_gpu.values()) == 1


def test_the_slurm_launcher_asks_for_one_nodes_gpus_at_once():
    """hydra/launcher=slurm: one node per job, one job of the array at a time by default."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from ladder.ladders.compose import compose_config

    launcher = compose_config("micro", ["hydra/launcher=slurm"],
                              return_hydra_config=True).hydra.launcher
    assert (launcher.nodes, launcher.gpus_per_node, launcher.array_parallelism) == (1, 8, 1)


def test_the_slurm_example_refuses_a_sweep_over_several_nodes(tmp_path):
    proc, srun = slurm_example(tmp_path, "ladder", SLURM_JOB_NUM_NODES="4")
    assert proc.returncode == 2 and srun is None
    assert "a sweep runs on one node: submit it with --nodes=1" in proc.stderr


def test_the_slurm_example_trains_one_rung_on_every_gpu_of_its_nodes(tmp_path):
    proc, srun = slurm_example(tmp_path, "micro", "seed=1", SLURM_JOB_NUM_NODES="4",
                               SLURM_GPUS_ON_NODE="4")
    assert proc.returncode == 0, proc.stderr
    assert srun[:6] == ["--kill-on-bad-exit=1", "python", "-m", "torch.distributed.run",
                        "--nnodes=4", "--nproc_per_node=4"]
    assert "--rdzv_endpoint=node001:29500" in srun and srun[-2:] == ["trainer.batch_size=128",
                                                                     "seed=1"]
