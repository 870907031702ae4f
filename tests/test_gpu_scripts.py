"""scripts/gpu_check.sh and scripts/gpu_ladder.sh in their CPU mode (LADDER_GPU_CHECK_CPU=1),
each into a tmp OUT: the summary JSON and the archive exist and name every step; a step that
times out or fails does not stop the later ones; a script stopped by a signal still leaves
both. Plus the helpers behind them (scripts/gpu_steps.py: ladder/bench/gpu_steps.py) and the
sweep's --first (ladder/train/sweep.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import REPO
from ladder.bench import gpu_steps

CHECK_STEPS = ["env", "device_randaugment", "resume", "concurrency_n1", "concurrency_n2",
               "bench_eager", "bench_compile"]
LADDER_STEPS = ["env", "cache", "calibrate", "size", "sweep", "report", "report_milestones"]


# The scripts' settings, which must not leak in from the environment the tests run in.
SETTINGS = ("LADDER_GPU_STEPS", "LADDER_GPU_TIMEOUTS", "EPOCHS", "RATE_FROM", "DATA", "ROUNDS",
            "ROUND_S", "JOBS", "SEEDS", "RUNGS", "FIRST", "CAL_S", "CAL_RUNGS", "EPOCHS_MAX",
            "RESERVE_S", "KILL_GRACE", "LADDER_GPU_RESUME", "COMPILE_ARGS")


def script_env(tmp_path: Path, cache_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update({"OUT": str(tmp_path / "out"), "LADDER_WORK": str(tmp_path / "work"),
                "LADDER_CACHE": str(cache_dir), "PYTHON": sys.executable,
                "LADDER_GPU_CHECK_CPU": "1",
                "TOTAL_S": "900"})  # the deadline is not under test here: a busy CPU is slow
    env.update(extra)
    return env


def summary_and_archive(out: Path, name: str) -> tuple[dict, list[str], dict]:
    summary = json.loads((out / f"{name.replace('-', '_')}_summary.json").read_text())
    with tarfile.open(out / f"{name}.tar.gz") as tar:
        names = tar.getnames()
        packed = json.load(tar.extractfile(f"{name.replace('-', '_')}_summary.json"))
    return summary, names, packed


def steps_of(summary: dict) -> dict:
    return {s["name"]: s for s in summary["steps"]}


@pytest.mark.slow
def test_gpu_check_cpu_mode_runs_every_step(tmp_path, cache_dir):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=script_env(tmp_path, cache_dir))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary, names, packed = summary_and_archive(out, "gpu-check")
    assert [s["name"] for s in summary["steps"]] == CHECK_STEPS
    assert summary["finished"] and packed["finished"]
    steps = steps_of(summary)
    for name in CHECK_STEPS:
        assert steps[name]["status"] == "ok", steps[name]
        assert steps[name]["rc"] == 0 and steps[name]["seconds"] > 0
        assert f"gpu-check/logs/{name}.log" in names
    assert {s["name"] for s in packed["steps"]} == set(CHECK_STEPS)
    smoke, resume = steps["device_randaugment"]["numbers"], steps["resume"]["numbers"]
    assert smoke["train_rc"] == 75 and smoke["pipeline"] == "device"
    assert resume["resumed"] and resume["resumed_epoch"] == 1 and resume["status"] == "completed"
    assert resume["randaugment"] and resume["data_pipeline"] == "device"
    for n in (1, 2):
        round_ = steps[f"concurrency_n{n}"]["numbers"]
        assert round_["n"] == n and round_["jobs_trained"] == n and round_["images"] > 0
        assert round_["img_per_s"] > 0 and len(round_["jobs"]) == n
    assert steps["bench_eager"]["numbers"]["separate_downsampling"]["ratio"] > 0
    assert steps["bench_compile"]["numbers"]["settings"]["compile"] == "True"
    assert sorted(os.listdir(out)) == ["gpu-check.tar.gz", "gpu_check_summary.json"]
    assert not any(n.endswith((".pt", ".lock")) for n in names)


@pytest.mark.slow
def test_gpu_ladder_cpu_mode_sizes_epochs_runs_milestones_first_and_reports(tmp_path, cache_dir):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "scripts/gpu_ladder.sh"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=script_env(tmp_path, cache_dir))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary, names, packed = summary_and_archive(out, "gpu-ladder")
    assert [s["name"] for s in summary["steps"]] == LADDER_STEPS
    steps = steps_of(summary)
    assert all(steps[n]["status"] == "ok" for n in LADDER_STEPS), summary["steps"]
    size = steps["size"]["numbers"]
    assert size["epochs"] == 1 and size["source"].startswith("measured")
    assert "E = floor(" in size["arithmetic"]
    sweep = steps["sweep"]["numbers"]
    assert sweep["runs_completed"] == 3 and sweep["milestone_runs_completed"] == 2
    for rung in ("resnet50", "kernel9", "micro"):
        assert f"gpu-ladder/runs/{rung}/seed0/result.json" in names
    assert "gpu-ladder/report/roadmap.md" in names
    assert "gpu-ladder/report-milestones/roadmap.md" in names
    assert sorted(os.listdir(out)) == ["gpu-ladder.tar.gz", "gpu_ladder_summary.json"]
    assert not any(n.endswith((".pt", ".lock")) for n in names)
    # --first milestones: resnet50 and micro (milestones) start before kernel9, which waits for
    # a free slot (2 at once). A run's start: its result's time less its wall time.
    runs = tmp_path / "work" / "gpu-ladder" / "runs"
    start = {rung: (runs / rung / "seed0" / "result.json").stat().st_mtime
             - json.loads((runs / rung / "seed0" / "result.json").read_text())["wall_time_s"]
             for rung in ("resnet50", "kernel9", "micro")}
    assert start["kernel9"] > max(start["resnet50"], start["micro"])


@pytest.mark.slow
def test_a_timed_out_or_failing_step_does_not_stop_the_later_ones_nor_does_a_signal_lose_them(
        tmp_path, cache_dir):
    """device_randaugment is given 2 s (it times out); resume then has nothing to resume (it
    fails) and the round still runs, until the script itself is sent SIGTERM: the round is
    recorded as interrupted, the steps after it as skipped, and summary and archive exist."""
    out = tmp_path / "out"
    env = script_env(tmp_path, cache_dir, ROUNDS="1", ROUND_S="30",
                     LADDER_GPU_STEPS="env,device_randaugment,resume,concurrency_n1,bench_eager",
                     LADDER_GPU_TIMEOUTS="device_randaugment=2")
    printed = tmp_path / "printed.txt"
    proc = subprocess.Popen(["bash", "scripts/gpu_check.sh"], cwd=REPO, env=env,
                            stdout=printed.open("w"), stderr=subprocess.STDOUT)
    summary_path = out / "gpu_check_summary.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            state = steps_of(json.loads(summary_path.read_text()))
        except (OSError, ValueError):
            state = {}
        if state.get("concurrency_n1", {}).get("status") == "running":
            break
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 143, printed.read_text()[-3000:]
    summary, names, packed = summary_and_archive(out, "gpu-check")
    steps = steps_of(summary)
    assert [s["name"] for s in summary["steps"]] == [
        "env", "device_randaugment", "resume", "concurrency_n1", "bench_eager", "bench_compile"]
    assert steps["env"]["status"] == "ok"
    assert steps["device_randaugment"]["status"] == "timed_out"
    assert steps["device_randaugment"]["rc"] == 124 and steps["device_randaugment"]["limit_s"] == 2
    assert steps["resume"]["status"] == "failed"
    assert "resumed from" in steps["resume"]["numbers"]["checks"]  # nothing to resume
    assert steps["concurrency_n1"]["status"] == "interrupted"
    for name in ("bench_eager", "bench_compile"):
        assert steps[name]["status"] == "skipped" and "stopped" in steps[name]["why"]
    for name in ("env", "device_randaugment", "resume", "concurrency_n1"):
        assert f"gpu-check/logs/{name}.log" in names
    assert steps_of(packed)["concurrency_n1"]["status"] == "interrupted"


# ----------------------------------------------------------------------------- the helpers
def test_record_keeps_one_entry_per_step_and_packs_without_checkpoints(tmp_path):
    out = tmp_path / "out"
    folder = out / "gpu-check"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "a.log").write_text("hello\n")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.pt").write_bytes(b"x")
    (folder / "numbers.json").write_text(json.dumps({"img_per_s": 12.5}))
    summary, archive = out / "s.json", out / "a.tar.gz"
    common = ["record", "--summary", str(summary), "--script", "t", "--archive", str(archive),
              "--pack-dir", str(folder)]
    gpu_steps.main(common + ["--plan", "a,b,c"])
    gpu_steps.main(common + ["--name", "a", "--status", "running", "--limit", "30"])
    gpu_steps.main(common + ["--name", "a", "--rc", "0", "--seconds", "1.25", "--limit", "30",
                             "--numbers", str(folder / "numbers.json")])
    gpu_steps.main(common + ["--name", "b", "--rc", "124", "--seconds", "30", "--limit", "30"])
    gpu_steps.main(common + ["--name", "c", "--rc", "2", "--seconds", "3", "--limit", "30"])
    data = json.loads(summary.read_text())
    assert [(s["name"], s["status"]) for s in data["steps"]] == [
        ("a", "ok"), ("b", "timed_out"), ("c", "failed")]
    assert data["steps"][0]["numbers"] == {"img_per_s": 12.5}
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "s.json" in names and "gpu-check/logs/a.log" in names
    assert not any("checkpoints" in n or n.endswith(".pt") for n in names)


def test_size_turns_a_measured_round_into_epochs(tmp_path):
    round_json = tmp_path / "round.json"
    round_json.write_text(json.dumps({"n": 8, "window_s": 15, "per_job_img_per_s": 2000.0,
                                      "startup_s": 8.0, "images_per_epoch": 9344}))
    out = tmp_path / "size.json"
    gpu_steps.main(["size", "--round", str(round_json), "--jobs", "8", "--budget", "400",
                    "--json", str(out)])
    size = json.loads(out.read_text())
    # 51 jobs, W = 48 + 3 x 3 = 57; s = 8 + 2 s: (0.85 x 8 x 400 - 51 x 10) x 2000 / (9344 x 57)
    assert size["jobs"] == 51 and size["epoch_weight"] == 57
    assert size["exact"] == pytest.approx((0.85 * 8 * 400 - 51 * 10) * 2000 / (9344 * 57), abs=0.01)
    assert size["epochs"] == 8 and size["torchvision_epochs"] == 24
    assert size["source"].startswith("measured")
    gpu_steps.main(["size", "--jobs", "8", "--budget", "4000", "--json", str(out)])
    assumed = json.loads(out.read_text())
    assert assumed["source"].startswith("ASSUMED") and assumed["epochs"] == 15  # the cap


def test_size_reads_a_gpu_check_summary(tmp_path):
    summary = tmp_path / "gpu_check_summary.json"
    summary.write_text(json.dumps({"device": "a card", "steps": [
        {"name": "concurrency_n4", "status": "ok",
         "numbers": {"per_job_img_per_s": 4000.0, "startup_s": 6.0, "images_per_epoch": 9344}}]}))
    out = tmp_path / "size.json"
    gpu_steps.main(["size", "--rate-from", str(summary), "--jobs", "4", "--budget", "300",
                    "--json", str(out)])
    size = json.loads(out.read_text())
    assert "gpu_check.sh" in size["source"] and size["per_job_img_per_s"] == 4000.0


def test_collect_copies_finished_runs_and_counts_milestones(tmp_path):
    runs, dest = tmp_path / "runs", tmp_path / "out" / "runs"
    finished = (("resnet50", "resnet50", "completed"), ("kernel9", None, "completed"),
                ("width", "depthwise", "failed"))
    for rung, milestone, status in finished:
        run = runs / rung / "seed0"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({"status": status, "milestone": milestone}))
        (run / "train.log").write_text("log\n")
    (runs / "kernel11" / "seed0").mkdir(parents=True)
    (runs / "kernel11" / "seed0" / "train.log").write_text("unfinished\n")
    summary = tmp_path / "out" / "s.json"
    summary.parent.mkdir()
    summary.write_text(json.dumps({"steps": [{"name": "sweep", "status": "running"}]}))
    gpu_steps.main(["collect", "--runs", str(runs), "--dest", str(dest), "--summary", str(summary)])
    assert (dest / "resnet50" / "seed0" / "result.json").exists()
    assert not (dest / "kernel11").exists()
    numbers = json.loads(summary.read_text())["steps"][0]["numbers"]
    assert numbers == {"runs_completed": 2, "runs_failed": 1, "milestone_runs_completed": 1}
    gpu_steps.main(["collect", "--runs", str(runs), "--dest", str(dest), "--logs"])
    assert (dest / "kernel11" / "seed0" / "train.log").read_text() == "unfinished\n"


def test_sweep_first_puts_the_milestones_ahead_rung_by_rung():
    from ladder.ladders import rungs
    from ladder.train import sweep
    from ladder.train.jobs import Job

    jobs = [Job(name, (), seed) for seed in (0, 1, 2) for name in rungs.RUNG_NAMES]
    ordered = sweep.first_jobs(jobs, list(rungs.MILESTONES))  # milestone aliases
    milestones = ["resnet50", "recipe", "patchify", "width", "inverted_bottleneck", "kernel7",
                  "separate_downsampling"]
    ahead = [(m, s) for m in milestones for s in (0, 1, 2)]
    assert [(j.name, j.seed) for j in ordered[:21]] == ahead
    rest = [j for j in jobs if j.name not in milestones]
    assert ordered[21:] == rest  # the others keep the sweep's own order


# ----------------------------------------------------------------------------- the Python
HIDER = '''\
"""Hides the modules named in $HIDE_MODULES from this interpreter (tests/test_gpu_scripts.py),
except in one under $HIDE_UNLESS_PREFIX."""
import os
import sys

_HIDDEN = {m for m in os.environ.get("HIDE_MODULES", "").split(",") if m}
_UNLESS = os.environ.get("HIDE_UNLESS_PREFIX")


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _HIDDEN and not (_UNLESS and sys.prefix.startswith(_UNLESS)):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
        return None


sys.meta_path.insert(0, _Hide())
'''


def python_env(tmp_path: Path, hide: str, **extra: str) -> dict:
    """No PYTHON; a ``python3`` on PATH that is this interpreter with the modules ``hide``
    (comma-separated) hidden; pip never reaches an index."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    python3 = tmp_path / "bin" / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python3.chmod(0o755)
    (tmp_path / "hider").mkdir(exist_ok=True)
    (tmp_path / "hider" / "sitecustomize.py").write_text(HIDER)
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS + ("PYTHON", "PYTHONPATH")}
    env.update({"PATH": f"{tmp_path / 'bin'}:{env['PATH']}", "PYTHONPATH": str(tmp_path / "hider"),
                "HIDE_MODULES": hide, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.update(extra)
    return env


def choose_python(tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    """gpu_python of scripts/gpu_common.sh, in an empty folder (no .whl/ there)."""
    work = tmp_path / "elsewhere"
    work.mkdir(exist_ok=True)
    script = (f'set -u; . "{REPO}/scripts/gpu_common.sh"; WORK_TOP="{tmp_path}/work"; '
              'if gpu_python; then echo "CHOSEN=$PY"; else echo "PROBLEM=$PY_PROBLEM"; exit 1; fi')
    return subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_python_that_imports_what_the_steps_import_is_taken_without_kornia(tmp_path):
    proc = choose_python(tmp_path, python_env(tmp_path, hide="kornia"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "CHOSEN=python3"
    assert not (tmp_path / "work" / "venv").exists()


@pytest.mark.slow
def test_a_missing_module_gets_a_venv_that_reuses_this_pythons_torch(tmp_path):
    """hydra is missing from python3 but not inside the venv made from it (there the hider
    lets it through): the venv, made with --system-site-packages and python3's own packages
    on its path, is chosen; pip downloads nothing (the requirement is already satisfied)."""
    venv = tmp_path / "work" / "venv"
    env = python_env(tmp_path, hide="hydra", HIDE_UNLESS_PREFIX=str(venv))
    proc = choose_python(tmp_path, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"CHOSEN={venv}/bin/python"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    import torch

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__file__)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip() == torch.__file__  # this interpreter's torch, not a download


@pytest.mark.slow
def test_without_a_fitting_python_it_fails_fast_in_one_sentence_naming_the_modules(tmp_path):
    proc = choose_python(tmp_path, python_env(tmp_path, hide="hydra,omegaconf"))
    assert proc.returncode == 1
    problem = proc.stdout.splitlines()[-1]
    assert problem.startswith("PROBLEM=python: no Python here imports hydra, omegaconf (not python3")
    assert problem.endswith(".") and problem.count(". ") == 0 and "torch" not in problem


def test_a_python_without_torch_gets_nothing_installed(tmp_path):
    proc = choose_python(tmp_path, python_env(tmp_path, hide="torch"))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == (
        "PROBLEM=python: python3 cannot import torch, torchvision, timm; torch and torchvision "
        "must come with the machine (a build for its CUDA driver, never downloaded here), so set "
        "PYTHON to a Python that has them.")
    assert not (tmp_path / "work").exists() and not (tmp_path / "elsewhere" / ".venv-gpu").exists()


def test_the_check_without_a_fitting_python_says_why_in_its_summary(tmp_path, cache_dir):
    """The whole script: one sentence on stderr, exit 1 at once, and the summary (written by
    the same Python, which needs no torch for it) says why, every other step skipped."""
    out = tmp_path / "out"
    env = python_env(tmp_path, hide="torch", OUT=str(out), LADDER_WORK=str(tmp_path / "work"),
                     LADDER_CACHE=str(cache_dir), LADDER_GPU_CHECK_CPU="1")
    t0 = time.time()
    proc = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 1 and time.time() - t0 < 120
    assert proc.stderr.strip().splitlines() == [
        "[gpu-check] python: python3 cannot import torch, torchvision, timm; torch and torchvision "
        "must come with the machine (a build for its CUDA driver, never downloaded here), so set "
        "PYTHON to a Python that has them."]
    summary, names, packed = summary_and_archive(out, "gpu-check")
    steps = steps_of(summary)
    assert steps["env"]["status"] == "failed" and "cannot import torch" in steps["env"]["why"]
    assert all(s["status"] == "skipped" for n, s in steps.items() if n != "env")
    assert summary["finished"] and "gpu-check/logs/env.log" in names


def test_the_modules_checked_are_those_the_package_and_scripts_import():
    """STEP_MODULES in scripts/gpu_common.sh: every module outside the standard library that
    ladder/, train.py or scripts/ import, but those no step needs (W&B, the cluster launcher,
    kornia); and pip is asked for them with pyproject.toml's bounds."""
    import ast

    def imported(path: Path) -> set[str]:
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                out.add(node.module.split(".")[0])
        return out

    files = [*(REPO / "ladder").rglob("*.py"), REPO / "train.py", *(REPO / "scripts").glob("*.py")]
    third_party = set().union(*map(imported, files)) - set(sys.stdlib_module_names) - {
        "ladder", "__future__", "wandb", "wandb_workspaces", "submitit", "kornia"}
    listed = subprocess.run(
        ["bash", "-c", '. scripts/gpu_common.sh; echo "$STEP_MODULES"; '
                       'for m in $STEP_MODULES; do requirement_of "$m"; done'],
        cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    modules = set(listed[0].split())
    assert third_party <= modules, f"not checked: {third_party - modules}"
    assert modules - third_party <= {"yaml"}  # omegaconf's, which Hydra's configs are read with
    pyproject = (REPO / "pyproject.toml").read_text()
    for requirement in listed[1:]:
        if any(c in requirement for c in "<>="):
            assert f'"{requirement}"' in pyproject, requirement


# ----------------------------------------------------------------------------- calibration
def uninstalled_python(tmp_path: Path) -> Path:
    """A Python that has this interpreter's packages (torch, Hydra, ...) but not the editable
    install of ``ladder``: a venv whose only link to them is a .pth naming their folder (a
    folder named there is on sys.path, its own .pth files, the editable finder's among them,
    are not run)."""
    import sysconfig

    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


@pytest.mark.slow
def test_a_round_run_from_an_uninstalled_copy_imports_the_copys_ladder(tmp_path):
    """scripts/gpu_steps.py round from a copy of the checkout, by a Python without `ladder`,
    from another folder, PYTHONPATH cleared: the round runs its job (which fails at once here)
    and still writes what it measured."""
    import shutil

    python = uninstalled_python(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LADDER_FAULT_SIGTERM_AT_STEP")}
    assert subprocess.run([str(python), "-c", "import ladder"], env=env, cwd=tmp_path,
                          capture_output=True).returncode == 1  # not installed for it
    copy = tmp_path / "copy"
    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("ladder", "scripts", "conf"):
        shutil.copytree(REPO / part, copy / part, ignore=ignore)
    shutil.copy(REPO / "train.py", copy / "train.py")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "round.json"
    proc = subprocess.run(
        [str(python), str(copy / "scripts" / "gpu_steps.py"), "round", "--n", "1", "--window", "1",
         "--rungs", "micro", "--work", str(tmp_path / "work"), "--log-dir", str(tmp_path / "logs"),
         "--json", str(out), "--budget", "240", "--", "logger=none", "trainer.batch_size=0"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # the job failed
    data = json.loads(out.read_text())
    assert data["n"] == 1 and data["jobs_trained"] == 0 and data["per_job_img_per_s"] == 0
    assert "no checkpoint" in data["jobs"][0]["error"]
    assert "trainer.batch_size" in (tmp_path / "logs" / "n1-job1.log").read_text()


def test_size_fails_aloud_when_the_calibration_round_measured_nothing(tmp_path, capsys):
    out = tmp_path / "size.json"
    missing = tmp_path / "calibrate.json"
    assert gpu_steps.main(["size", "--round", str(missing), "--jobs", "8", "--budget", "400",
                           "--json", str(out)]) == 1
    size = json.loads(out.read_text())
    assert size["source"].startswith(f"ASSUMED because the calibration round wrote no {missing}")
    printed = capsys.readouterr().out
    assert "EPOCHS=" in printed and "[size] error: the calibration round wrote no" in printed
    missing.write_text(json.dumps({"n": 2, "window_s": 3, "jobs_trained": 0,
                                   "per_job_img_per_s": 0.0}))
    assert gpu_steps.main(["size", "--round", str(missing), "--jobs", "2", "--budget", "400",
                           "--json", str(out)]) == 1
    assert "measured no throughput (0 of 2 jobs trained)" in json.loads(out.read_text())["source"]
    assert gpu_steps.main(["size", "--round", str(missing), "--jobs", "2", "--budget", "400",
                           "--fixed", "3"]) == 0  # EPOCHS given: nothing is assumed


@pytest.mark.slow
def test_the_ladder_script_says_a_failed_calibration_aloud(tmp_path, cache_dir):
    """A calibration whose jobs all fail (an unknown rung): calibrate and size are recorded as
    failed, size with the reason, the console says so, and the script exits 1."""
    out = tmp_path / "out"
    env = script_env(tmp_path, cache_dir, LADDER_GPU_STEPS="env,calibrate,size",
                     CAL_RUNGS="no_such_rung")
    proc = subprocess.run(["bash", "scripts/gpu_ladder.sh"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary, names, _ = summary_and_archive(out, "gpu-ladder")
    steps = steps_of(summary)
    assert steps["env"]["status"] == "ok" and steps["calibrate"]["status"] == "failed"
    assert steps["size"]["status"] == "failed"
    assert steps["size"]["numbers"]["source"].startswith(
        "ASSUMED because the calibration round measured no throughput (0 of 2 jobs trained)")
    assert "[gpu-ladder] calibrate failed (exit 1)" in proc.stdout
    assert "[size] error: the calibration round measured no throughput" in proc.stdout
    assert sorted(os.listdir(out)) == ["gpu-ladder.tar.gz", "gpu_ladder_summary.json"]


@pytest.mark.slow
def test_the_output_folder_gets_the_summary_and_the_archive_and_nothing_else(tmp_path, cache_dir):
    """Both scripts into one OUT (their env step only): two files each there; logs, numbers and
    the summary's lock stay in LADDER_WORK, and the archive holds the logs."""
    out, work = tmp_path / "out", tmp_path / "work"
    for script in ("gpu_check.sh", "gpu_ladder.sh"):
        proc = subprocess.run(["bash", f"scripts/{script}"], cwd=REPO, capture_output=True,
                              text=True, timeout=600,
                              env=script_env(tmp_path, cache_dir, LADDER_GPU_STEPS="env"))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["gpu-check.tar.gz", "gpu-ladder.tar.gz",
                                       "gpu_check_summary.json", "gpu_ladder_summary.json"]
    for name in ("gpu-check", "gpu-ladder"):
        summary, names, _ = summary_and_archive(out, name)
        assert steps_of(summary)["env"]["status"] == "ok"
        assert steps_of(summary)["env"]["log"] == f"{name}/logs/env.log"
        assert f"{name}/logs/env.log" in names and f"{name}/versions.json" in names
        assert (work / "archive" / name / "logs" / "env.log").exists()
        assert (work / "archive" / f"{name}.lock").exists()
