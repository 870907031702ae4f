#!/usr/bin/env python
"""The steps of scripts/gpu_check.sh and scripts/gpu_ladder.sh that are easier in Python.

    python scripts/gpu_steps.py record   --summary S --name STEP ...  # one step into the summary
    python scripts/gpu_steps.py collect  --runs WORK/runs --dest OUT/runs ...  # finished runs out
    python scripts/gpu_steps.py show     --summary S                 # the summary as a table
    python scripts/gpu_steps.py versions --json F                    # software and device
    python scripts/gpu_steps.py train    --run-dir D [--expect-rc 75] -- <train.py overrides>
    python scripts/gpu_steps.py round    --n 4 --window 10 ... -- <train.py overrides>
    python scripts/gpu_steps.py size     --round F | --rate-from S | --assume-img-s X ...
    python scripts/gpu_steps.py cache    -- <train.py overrides>     # decode the data once
    python scripts/gpu_steps.py bench    [--compile-backend eager] -- <scripts/benchmark.py args>

The summary is one JSON file with one entry per step (name, status, exit code, seconds, the
step's limit, its log, and the key numbers it measured), rewritten atomically after every
change, and the archive (tar.gz of the script's output folder and the summary) is rebuilt with
it, so a script stopped at any point still leaves both. record, collect and show use only the
standard library; versions, round, train read what torch wrote, importing torch only there.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The trainer's lines (ladder/trainer.py) the steps read.
BANNER_DATA = re.compile(r"^\[ladder\] data .*?(\d+) train / (\d+) val images; (\w+) pipeline\)")
BANNER_BATCH = re.compile(r"batch (\d+) = (\d+) x (\d+) accum x (\d+) ranks")
BANNER_LAST = re.compile(r"^\[ladder\] \w+ \w+, output ")  # the last banner line: training starts
EPOCH = re.compile(r"^\[ladder\] epoch (\d+)/(\d+) loss (\S+) lr \S+ top-1 ([\d.]+) "
                   r".*\| ([\d.]+) img/s")
RESUMED = re.compile(r"^\[ladder\] resumed from (\S+) at epoch (\d+), step (\d+)")
STOPPED = re.compile(r"^\[ladder\] stopped by signal (\d+)")
DONE = re.compile(r"^\[ladder\] done: top-1 ([\d.]+)")

# The one rung trained with the torchvision recipe (conf/rung/resnet50.yaml); its preset budget
# is a multiple of the modern recipe's epochs (imagenette_gpu: 45 = 3 x 15).
TORCHVISION_RUNGS = ("resnet50",)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock beside ``path``: the script and its background collector both write
    the summary and the archive."""
    import fcntl

    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _skip_in_archive(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """No checkpoints, lock files or half-written temporary files in the archive."""
    name = Path(info.name)
    temporary = name.name.startswith(".") and ".tmp" in name.name
    if name.suffix in (".pt", ".lock") or "checkpoints" in name.parts or temporary:
        return None
    return info


def pack(archive: Path, folder: Path, summary: Path) -> None:
    """tar.gz of ``folder`` and ``summary`` (checkpoints left out), written atomically."""
    archive = Path(archive)
    tmp = archive.with_name(f".{archive.name}.tmp{os.getpid()}")
    with tarfile.open(tmp, "w:gz") as tar:
        if Path(summary).exists():
            tar.add(summary, arcname=Path(summary).name)
        if Path(folder).is_dir():
            tar.add(folder, arcname=Path(folder).name, filter=_skip_in_archive)
    os.replace(tmp, archive)


def _status(rc: int) -> str:
    if rc == 0:
        return "ok"
    if rc in (124, 137):  # timeout's exit status; 137: killed after the grace period
        return "timed_out"
    return "failed"


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def bench_numbers(path: Path) -> dict:
    """The key numbers of a scripts/benchmark.py --json file."""
    data = read_json(path)
    if not data:
        return {}
    out = {"device": data.get("device"), "precision": data.get("precision"),
           "settings": {k: data.get("settings", {}).get(k)
                        for k in ("batch", "size", "compile", "steps", "repeats")
                        if k in data.get("settings", {})}}
    for row in data.get("rows", []):
        keep = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                if k in ("img_per_s", "reference", "reference_img_per_s", "ratio", "time_ratio",
                         "peak_mem_gib", "reference_peak_mem_gib", "pipeline",
                         "trainer_img_per_s", "pure_img_per_s")}
        out[row.get("rung", "?")] = keep
    return out


# ----------------------------------------------------------------------------- record / show
def cmd_record(a) -> int:
    summary = Path(a.summary)
    with locked(summary):
        data = read_json(summary) or {"script": a.script, "started": now_iso(), "finished": False,
                                      "steps": []}
        for item in a.meta or []:
            key, _, value = item.partition("=")
            data[key] = _parse_value(value)
        for name in (a.plan or "").split(","):
            if name and not any(st["name"] == name for st in data["steps"]):
                data["steps"].append({"name": name, "status": "pending"})
        if a.name:
            steps = data.setdefault("steps", [])
            entry = next((s for s in steps if s["name"] == a.name), None)
            if entry is None:
                entry = {"name": a.name}
                steps.append(entry)
            if a.status == "pending":
                entry.update({"status": "pending"})
            elif a.status == "skipped":
                entry.update({"status": "skipped", "why": a.why or "not selected"})
            elif a.status == "running":
                entry.update({"status": "running", "started": now_iso(), "limit_s": a.limit,
                              "log": a.log})
            else:
                rc = int(a.rc)
                entry.update({"status": a.status or _status(rc), "rc": rc,
                              "seconds": round(float(a.seconds), 1), "limit_s": a.limit,
                              "log": a.log or entry.get("log"), "ended": now_iso()})
                if a.why:
                    entry["why"] = a.why
            numbers = dict(entry.get("numbers") or {})
            for path in a.numbers or []:
                numbers.update(read_json(path) or {})
            for path in a.bench or []:
                numbers.update(bench_numbers(Path(path)))
            if numbers:
                entry["numbers"] = numbers
        if a.finished:
            data["finished"] = True
        data["updated"] = now_iso()
        write_json_atomic(summary, data)
        if a.archive:
            pack(Path(a.archive), Path(a.pack_dir), summary)
    return 0


def _short(numbers: dict, limit: int = 110) -> str:
    parts = []
    for key, value in numbers.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in value.items() if not isinstance(v, (dict, list)))
            parts.append(f"{key}: {inner}")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        elif not isinstance(value, list):
            parts.append(f"{key} {value}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def cmd_show(a) -> int:
    data = read_json(a.summary)
    if not data:
        print(f"no summary at {a.summary}")
        return 1
    print(f"{data.get('script')} summary ({a.summary}), {data.get('device', '')}")
    fine = True
    print(f"{'step':<20} {'status':<11} {'rc':>4} {'s':>6} {'limit':>6}  key numbers")
    for s in data.get("steps", []):
        rc = s.get("rc", "")
        secs = f"{s['seconds']:.0f}" if "seconds" in s else ""
        print(f"{s['name']:<20} {s.get('status', ''):<11} {rc!s:>4} {secs:>6} "
              f"{s.get('limit_s') or '':>6}  {_short(s.get('numbers') or {}, a.width)}")
        if s.get("status") == "skipped" and s.get("why"):
            print(f"{'':<20} ({s['why']})")
        deselected = s.get("status") == "skipped" and "LADDER_GPU_STEPS" in (s.get("why") or "")
        fine = fine and (s.get("status") == "ok" or deselected)
    return 0 if fine or not a.exit_code else 1


# ----------------------------------------------------------------------------- collect
def cmd_collect(a) -> int:
    """Copy each finished run's result.json (and its train.log) from the work folder into the
    output folder, and count finished / milestone runs into the step's numbers."""
    src, dest = Path(a.runs), Path(a.dest)
    copied = 0
    completed = failed = milestones = 0
    for result in sorted(src.glob("*/seed*/result.json")):
        run = result.parent
        data = read_json(result)
        if not data:
            continue  # being written: next time
        target = dest / run.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        out = target / "result.json"
        st = result.stat()
        stale = not out.exists() or out.stat().st_size != st.st_size \
            or out.stat().st_mtime < st.st_mtime
        if stale:
            shutil.copy2(result, out)
            if (run / "train.log").exists():
                shutil.copy2(run / "train.log", target / "train.log")
            copied += 1
        if data.get("status") == "completed":
            completed += 1
            milestones += bool(data.get("milestone"))
        else:
            failed += 1
    if a.logs:  # at the end: every run's log, finished or not
        for log in src.glob("*/seed*/train.log"):
            target = dest / log.parent.relative_to(src)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(log, target / "train.log")
            copied += 1
    if copied and a.summary:
        with locked(Path(a.summary)):
            data = read_json(a.summary) or {"steps": []}
            entry = next((s for s in data.get("steps", []) if s["name"] == a.step), None)
            if entry is not None:
                numbers = dict(entry.get("numbers") or {})
                numbers.update({"runs_completed": completed, "runs_failed": failed,
                                "milestone_runs_completed": milestones})
                entry["numbers"] = numbers
                data["updated"] = now_iso()
                write_json_atomic(Path(a.summary), data)
            if a.archive:
                pack(Path(a.archive), Path(a.pack_dir), Path(a.summary))
    return 0


# ----------------------------------------------------------------------------- versions
def cmd_versions(a) -> int:
    import platform

    info = {"python": platform.python_version()}
    for module in ("torch", "torchvision", "timm", "kornia", "hydra", "omegaconf"):
        try:
            info[module] = __import__(module).__version__
        except Exception as err:  # report, don't stop: the next steps say what breaks
            info[module] = f"missing ({type(err).__name__})"
    import torch

    info["cuda"] = torch.cuda.is_available()
    info["cpu_count"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update({"device": torch.cuda.get_device_name(0),
                     "device_count": torch.cuda.device_count(),
                     "gpu_mem_gib": round(props.total_memory / 2**30, 1),
                     "cuda_version": torch.version.cuda, "bf16": torch.cuda.is_bf16_supported()})
    else:
        info["device"] = f"cpu ({platform.processor() or platform.machine()})"
    print(" ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    if a.json:
        write_json_atomic(Path(a.json), info)
    return 0 if info["cuda"] or a.allow_cpu else 1


# ----------------------------------------------------------------------------- train
class _Term:
    """SIGTERM sets a flag: the step's timeout signals the whole process group, so the
    trainer child checkpoints and stops by itself; this process reads on to its end and still
    writes what it measured."""

    def __init__(self):
        self.seen = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.seen = True


def parse_train_log(lines: list[str]) -> dict:
    out: dict = {}
    epochs = []
    for line in lines:
        if m := BANNER_DATA.match(line):
            out.update({"train_images": int(m[1]), "val_images": int(m[2]), "pipeline": m[3]})
        if m := BANNER_BATCH.search(line):
            out["batch"] = int(m[1])
        if m := EPOCH.match(line):
            epochs.append({"epoch": int(m[1]), "top1": float(m[4]), "img_per_s": float(m[5])})
        if m := RESUMED.match(line):
            out.update({"resumed": True, "resumed_epoch": int(m[2]), "resumed_step": int(m[3])})
        if m := STOPPED.match(line):
            out["stopped_by_signal"] = int(m[1])
        if m := DONE.match(line):
            out["done_top1"] = float(m[1])
    if epochs:
        out.update({"epochs_logged": len(epochs), "last_epoch_top1": epochs[-1]["top1"],
                    "last_epoch_img_per_s": epochs[-1]["img_per_s"]})
    return out


def result_numbers(run_dir: Path) -> dict:
    data = read_json(Path(run_dir) / "result.json")
    if not data:
        return {}
    cfg = data.get("config") or {}
    return {"status": data.get("status"), "top1": (data.get("metrics") or {}).get("top1"),
            "train_img_per_s": data.get("train_img_per_s"),
            "data_pipeline": data.get("data_pipeline"),
            "randaugment": (cfg.get("recipe") or {}).get("randaugment"),
            "precision": (cfg.get("trainer") or {}).get("precision"),
            "run_device": data.get("device"), "epochs": data.get("epochs"),
            "error": data.get("error")}


def cmd_train(a) -> int:
    """One train.py run into --run-dir, its output passed through; exit 0 when its exit code
    is one of --expect-rc and every --expect pattern was printed, else 1."""
    term = _Term()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LADDER_FAULT_SIGTERM_AT_STEP", None)
    if a.sigterm_at_step:
        env["LADDER_FAULT_SIGTERM_AT_STEP"] = str(a.sigterm_at_step)  # ladder/trainer.py's hook
    cmd = [sys.executable, str(REPO / "train.py"), *a.overrides, f"hydra.run.dir={a.run_dir}"]
    print("+ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO, stdin=subprocess.DEVNULL)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    rc = proc.wait()
    numbers = {"train_rc": rc, "seconds": round(time.monotonic() - t0, 1),
               **parse_train_log(lines), **result_numbers(Path(a.run_dir))}
    problems = []
    if rc not in a.expect_rc:
        problems.append(f"train.py exited {rc}, expected {' or '.join(map(str, a.expect_rc))}")
    for pattern in a.expect or []:
        if not any(re.search(pattern, line) for line in lines):
            problems.append(f"no line matched {pattern!r}")
    result = read_json(Path(a.run_dir) / "result.json") or {}
    for item in a.expect_result or []:
        key, _, want = item.partition("=")
        value = result
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if str(value) != want:
            problems.append(f"result.json {key} is {value!r}, expected {want!r}")
    if term.seen:
        problems.append("stopped by the step's time limit")
    numbers["checks"] = "ok" if not problems else "; ".join(problems)
    if a.numbers:
        write_json_atomic(Path(a.numbers), numbers)
    print(f"[check] {numbers['checks']}", flush=True)
    return 0 if not problems else 1


# ----------------------------------------------------------------------------- round
def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class RoundJob:
    def __init__(self, index: int, rung: str, seed: int, run_dir: Path, log: Path):
        self.index, self.rung, self.seed, self.run_dir, self.log = index, rung, seed, run_dir, log
        self.proc: subprocess.Popen | None = None
        self.launched = self.started = self.signalled = self.exited = None
        self.lines: list[str] = []
        self.epoch_times: list[float] = []

    def read(self) -> None:
        with open(self.log, "w") as f:
            for line in self.proc.stdout:
                t = time.monotonic()
                f.write(line)
                f.flush()
                line = line.rstrip("\n")
                self.lines.append(line)
                if self.started is None and BANNER_LAST.match(line):
                    self.started = t
                if EPOCH.match(line):
                    self.epoch_times.append(t)
        self.proc.wait()
        self.exited = time.monotonic()


def _override(overrides: list[str], key: str):
    for o in reversed(overrides):
        if o.startswith(key + "="):
            return o.split("=", 1)[1]
    return None


def cmd_round(a) -> int:
    """n train.py jobs on one device; each trains for --window seconds from the moment it
    starts training (the last line of its banner) and is then stopped with SIGTERM, which makes
    it write a checkpoint holding the images it trained and its training time. The round's
    measure: the images all jobs trained over the window, sum over jobs of images / window."""
    term = _Term()
    work, logs = Path(a.work), Path(a.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    rungs = [r for r in a.rungs.split(",") if r]
    threads = max(1, _cores() // a.n)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    env.pop("LADDER_FAULT_SIGTERM_AT_STEP", None)
    # Long enough never to finish inside a round (the schedule does not change the speed).
    never_done = ["trainer.epochs=100000", "trainer.by_recipe.torchvision.epochs=100000"] + [
        o for o in ("trainer.checkpoint_epochs=false", "trainer.progress=false")
        if _override(a.overrides, o.split("=")[0]) is None]
    jobs = []
    t0 = time.monotonic()
    budget = a.budget or float(os.environ.get("STEP_LIMIT", 0))  # gpu_common.sh's step limit
    deadline = t0 + budget - a.reserve if budget else math.inf
    for i in range(a.n):
        rung = rungs[i % len(rungs)]
        run_dir = work / f"n{a.n}" / f"job{i + 1}"
        shutil.rmtree(run_dir, ignore_errors=True)
        job = RoundJob(i + 1, rung, a.seed0 + i, run_dir, logs / f"n{a.n}-job{i + 1}.log")
        cmd = [sys.executable, str(REPO / "train.py"), f"+rung={rung}", f"seed={job.seed}",
               *a.overrides, *never_done, f"hydra.run.dir={run_dir}"]
        job.launched = time.monotonic()
        job.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL)
        threading.Thread(target=job.read, daemon=True).start()
        jobs.append(job)
    print(f"[round] {a.n} job(s) ({', '.join(j.rung for j in jobs)}), {threads} CPU threads "
          f"each, {a.window:g} s of training each", flush=True)
    kill_at = None
    while any(j.exited is None for j in jobs):
        t = time.monotonic()
        for j in jobs:
            if j.exited is not None or j.signalled is not None:
                continue
            if (j.started is not None and t >= j.started + a.window) or t >= deadline or term.seen:
                j.signalled = t
                with contextlib.suppress(ProcessLookupError):
                    j.proc.send_signal(signal.SIGTERM)
        if all(j.signalled is not None or j.exited is not None for j in jobs) and kill_at is None:
            kill_at = t + a.grace
        if kill_at is not None and t >= kill_at:
            for j in jobs:
                if j.exited is None:
                    with contextlib.suppress(ProcessLookupError):
                        j.proc.kill()
            kill_at = math.inf
        time.sleep(0.05)
    wall = time.monotonic() - t0

    from ladder.checkpoint import CheckpointError, load  # torch: only now, the jobs are done

    rows = []
    for j in jobs:
        row = {"job": j.index, "rung": j.rung, "seed": j.seed, "rc": j.proc.returncode,
               "startup_s": round(j.started - j.launched, 2) if j.started else None}
        images = train_time = None
        ckpt = j.run_dir / "checkpoints" / "last.pt"
        if ckpt.exists():
            try:
                state = load(ckpt)
                images, train_time = int(state["train_images"]), float(state["train_time_s"])
                row.update({"epochs_done": int(state["epoch"]), "steps": int(state["step"])})
            except (CheckpointError, KeyError) as err:
                row["error"] = str(err)[:200]
        if images is None:
            row.setdefault("error", "no checkpoint: the job never reached training, or failed"
                           + (f" ({j.lines[-1][:160]})" if j.lines else ""))
        # From its start of training to the SIGTERM; at least its training time, which also
        # holds the step that was running when the signal came.
        # (No banner seen, e.g. a changed trainer: the training time alone.)
        window = (j.signalled or j.exited) - j.started if j.started else None
        if train_time:
            window = max(window or 0.0, train_time)
        row.update({"images": images or 0, "train_time_s": train_time,
                    "window_s": round(window, 2) if window else None,
                    "img_per_s": round(images / window, 1) if images and window else 0.0,
                    "train_img_per_s": round(images / train_time, 1)
                    if images and train_time else 0.0})
        if len(j.epoch_times) >= 2:
            row["epoch_cycle_s"] = round(statistics.median(
                b - a_ for a_, b in zip(j.epoch_times, j.epoch_times[1:])), 3)
        info = parse_train_log(j.lines)
        if info.get("batch") and info.get("train_images"):
            steps = info["train_images"] // info["batch"]
            cap = _override(a.overrides, "trainer.max_steps_per_epoch")
            if cap not in (None, "null"):
                steps = min(steps, int(cap))
            row["images_per_epoch"] = steps * info["batch"]
        rows.append(row)
    started = [j.started for j in jobs if j.started]
    out = {
        "n": a.n, "window_s": a.window, "rungs": sorted({j.rung for j in jobs}),
        "jobs_trained": sum(1 for r in rows if r["images"] > 0),
        "images": sum(r["images"] for r in rows),
        "img_per_s": round(sum(r["img_per_s"] for r in rows), 1),
        "train_img_per_s": round(sum(r["train_img_per_s"] for r in rows), 1),
        "startup_s": round(statistics.median([r["startup_s"] for r in rows if r["startup_s"]]), 2)
        if started else None,
        "start_spread_s": round(max(started) - min(started), 2) if started else None,
        "wall_s": round(wall, 1),
        "images_per_epoch": next((r["images_per_epoch"] for r in rows
                                  if "images_per_epoch" in r), None),
        "jobs": rows,
    }
    out["per_job_img_per_s"] = round(out["img_per_s"] / a.n, 1)
    cycles = [r["epoch_cycle_s"] for r in rows if "epoch_cycle_s" in r]
    if cycles:
        out["epoch_cycle_s"] = round(statistics.median(cycles), 3)
    write_json_atomic(Path(a.json), out)
    print(f"[round] {a.n} job(s): {out['images']} images in {a.window:g} s windows -> "
          f"{out['img_per_s']:.0f} img/s in all ({out['per_job_img_per_s']:.0f} per job; "
          f"{out['train_img_per_s']:.0f} counting training time only); start-up "
          f"{out['startup_s']} s, starts spread over {out['start_spread_s']} s; round wall "
          f"{wall:.0f} s", flush=True)
    for r in rows:
        if r["images"] == 0:
            print(f"[round]   job {r['job']} ({r['rung']}): exit {r['rc']}: {r.get('error')}",
                  flush=True)
    ok = out["jobs_trained"] == a.n and not term.seen
    return 0 if ok else 1


# ----------------------------------------------------------------------------- size
def sweep_rungs(spec: str) -> list[str]:
    """'ladder', 'milestones' (conf/sweep/), or names separated by commas, as scripts/sweep.py
    reads them."""
    sys.path.insert(0, str(REPO))
    try:
        from ladder.conf_store import sweep_rungs as read  # resolves ${ladder_rungs:...}
    except ImportError:  # a checkout whose sweep files list the rungs themselves
        path = REPO / "conf" / "sweep" / f"{spec}.yaml"
        if path.exists():
            spec = re.search(r"^\s*\+rung:\s*(\S+)", path.read_text(), re.M)[1]
        return [s.strip() for s in spec.split(",") if s.strip()]
    return list(read(spec))


def cmd_size(a) -> int:
    """Epochs for the ladder sweep from a measured per-job throughput (see gpu_ladder.sh)."""
    source, r, s, p = None, None, None, None
    if a.round and (data := read_json(a.round)) and data.get("per_job_img_per_s"):
        source = f"measured: {a.round} ({data['n']} jobs at once, {data['window_s']} s windows)"
        r, s, p = data["per_job_img_per_s"], data.get("startup_s"), data.get("images_per_epoch")
    elif a.rate_from and (data := read_json(a.rate_from)):
        step = next((st for st in data.get("steps", [])
                     if st["name"] == f"concurrency_n{a.jobs}" and st.get("status") == "ok"), None)
        if step and step.get("numbers", {}).get("per_job_img_per_s"):
            n = step["numbers"]
            source = (f"measured by gpu_check.sh: {a.rate_from}, {step['name']} on "
                      f"{data.get('device', '?')}")
            r, s, p = n["per_job_img_per_s"], n.get("startup_s"), n.get("images_per_epoch")
    if r is None:
        source = (f"ASSUMED, not measured: {a.assume_img_s:g} img/s per job at {a.jobs} jobs at "
                  f"once, {a.assume_startup_s:g} s start-up; replace by a measurement "
                  f"(gpu_check.sh's concurrency rounds)")
        r, s = a.assume_img_s, a.assume_startup_s
    s = (s if s is not None else a.assume_startup_s) + a.end_s
    p = p or a.images_per_epoch
    names = sweep_rungs(a.rungs)
    seeds = [x for x in a.seeds.split(",") if x.strip()]
    n_jobs = len(names) * len(seeds)
    from ladder.rungs import resolve

    weight = sum(a.tv_factor if resolve(n).name in TORCHVISION_RUNGS else 1
                 for n in names) * len(seeds)
    # One job of E epochs holds a slot for s + w * E * p / r seconds; J slots for B seconds,
    # a safety factor f for the tail and uneven jobs: f * J * B >= N * s + E * W * p / r.
    room = a.safety * a.jobs * a.budget - n_jobs * s
    exact = room * r / (p * weight) if r > 0 else 0.0
    epochs = int(max(a.min_epochs, min(a.max_epochs, math.floor(exact))))
    if a.fixed:
        epochs, source = a.fixed, f"EPOCHS={a.fixed} given (the sizing below is for comparison)"
    out = {"epochs": epochs, "torchvision_epochs": epochs * a.tv_factor, "exact": round(exact, 2),
           "per_job_img_per_s": r, "startup_s": round(s, 2), "images_per_epoch": p,
           "jobs_at_once": a.jobs, "budget_s": round(a.budget, 1), "jobs": n_jobs,
           "epoch_weight": weight, "safety": a.safety, "max_epochs": a.max_epochs, "source": source}
    out["arithmetic"] = (f"E = floor(({a.safety:g} x {a.jobs} slots x {a.budget:.0f} s - "
                         f"{n_jobs} jobs x {s:.1f} s) x {r:.0f} img/s / ({p} img/epoch x "
                         f"{weight} epoch units)) = "
                         f"floor({exact:.2f}), within [{a.min_epochs}, {a.max_epochs}] -> {epochs}")
    if a.json:
        write_json_atomic(Path(a.json), out)
    print(f"[size] throughput: {source}", flush=True)
    print(f"[size] {out['arithmetic']}; torchvision recipe: {epochs * a.tv_factor}", flush=True)
    if exact < a.min_epochs:
        print(f"[size] warning: even {a.min_epochs} epoch(s) do not fit the budget; the sweep's "
              f"time limit will stop the last jobs", flush=True)
    print(f"EPOCHS={epochs}", flush=True)
    # The sweep's rungs as names, for scripts/sweep.py (--rungs, --first).
    print(f"RUNGS={','.join(names)}", flush=True)
    if a.first:
        print(f"FIRST={','.join(sweep_rungs(a.first))}", flush=True)
    return 0


# ----------------------------------------------------------------------------- cache
def cmd_cache(a) -> int:
    """Decode the data into the tensor cache once, before concurrent jobs start (they would
    each decode it): one rung of each recipe, whose interpolations give both tensor files."""
    sys.path.insert(0, str(REPO))
    from omegaconf import OmegaConf

    from ladder.compose import compose_config
    from ladder.data import build_loaders

    for rung in a.rungs.split(","):
        cfg = OmegaConf.to_object(compose_config(rung, a.overrides))
        loaders = build_loaders(cfg.data, cfg.recipe, 8, 1, 0)
        print(f"[cache] {rung}: {loaders.train_size} train / {loaders.val_size} val images from "
              f"{loaders.source} ({loaders.pipeline} pipeline)", flush=True)
    return 0


# ----------------------------------------------------------------------------- bench
def cmd_bench(a) -> int:
    """ladder/benchmark.py; --compile-backend swaps torch.compile's backend (CPU checks:
    'eager' traces with dynamo but skips inductor's C++ build, minutes on a small CPU)."""
    if a.compile_backend:
        import functools

        import torch

        torch.compile = functools.partial(torch.compile, backend=a.compile_backend)
    sys.path.insert(0, str(REPO))
    from ladder.benchmark import main

    main(a.args)
    return 0


# ----------------------------------------------------------------------------- cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("record", help="add or update a step in the summary; rebuild the archive")
    r.add_argument("--summary", required=True)
    r.add_argument("--script", default="")
    r.add_argument("--name")
    r.add_argument("--status", choices=("pending", "skipped", "running", "ok", "failed",
                                        "timed_out", "interrupted"))
    r.add_argument("--rc", default=0)
    r.add_argument("--seconds", default=0.0)
    r.add_argument("--limit", type=int)
    r.add_argument("--log")
    r.add_argument("--why")
    r.add_argument("--numbers", action="append", help="a JSON file of numbers (if it exists)")
    r.add_argument("--bench", action="append", help="a scripts/benchmark.py --json file")
    r.add_argument("--meta", action="append", help="KEY=VALUE at the top of the summary")
    r.add_argument("--plan", help="step names, comma-separated: listed as pending")
    r.add_argument("--finished", action="store_true")
    r.add_argument("--archive")
    r.add_argument("--pack-dir")
    r.set_defaults(fn=cmd_record)

    c = sub.add_parser("collect", help="copy finished runs out of the work folder")
    c.add_argument("--runs", required=True)
    c.add_argument("--dest", required=True)
    c.add_argument("--summary")
    c.add_argument("--step", default="sweep")
    c.add_argument("--archive")
    c.add_argument("--pack-dir")
    c.add_argument("--logs", action="store_true", help="also every unfinished run's train.log")
    c.set_defaults(fn=cmd_collect)

    s = sub.add_parser("show", help="print the summary as a table")
    s.add_argument("--summary", required=True)
    s.add_argument("--width", type=int, default=110)
    s.add_argument("--exit-code", action="store_true",
                   help="exit 1 unless every step ran and passed (deselected ones aside)")
    s.set_defaults(fn=cmd_show)

    v = sub.add_parser("versions", help="software and device, as JSON")
    v.add_argument("--json")
    v.add_argument("--allow-cpu", action="store_true", help="exit 0 without a GPU")
    v.set_defaults(fn=cmd_versions)

    t = sub.add_parser("train", help="one train.py run with expectations")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--numbers")
    t.add_argument("--expect-rc", type=int, action="append")
    t.add_argument("--expect", action="append", help="a regex some output line must match")
    t.add_argument("--expect-result", action="append",
                   help="KEY=VALUE: a dotted key of the run's result.json and its value")
    t.add_argument("--sigterm-at-step", type=int,
                   help="the trainer sends itself SIGTERM after this optimizer step")
    t.add_argument("overrides", nargs="*")
    t.set_defaults(fn=cmd_train)

    o = sub.add_parser("round", help="one concurrency round")
    o.add_argument("--n", type=int, required=True)
    o.add_argument("--window", type=float, required=True, help="seconds of training per job")
    o.add_argument("--rungs", default="depthwise", help="cycled over the jobs")
    o.add_argument("--seed0", type=int, default=1)
    o.add_argument("--work", required=True)
    o.add_argument("--log-dir", required=True)
    o.add_argument("--json", required=True)
    o.add_argument("--budget", type=float, default=0.0,
                   help="the step's time limit (default: $STEP_LIMIT): jobs are stopped "
                        "in time to read them")
    o.add_argument("--reserve", type=float, default=12.0)
    o.add_argument("--grace", type=float, default=30.0, help="SIGKILL this long after SIGTERM")
    o.add_argument("overrides", nargs="*")
    o.set_defaults(fn=cmd_round)

    z = sub.add_parser("size", help="epochs for the ladder from a throughput")
    z.add_argument("--round")
    z.add_argument("--rate-from")
    z.add_argument("--assume-img-s", type=float, default=2500.0)
    z.add_argument("--assume-startup-s", type=float, default=15.0)
    z.add_argument("--end-s", type=float, default=2.0, help="per job: writing the result")
    z.add_argument("--images-per-epoch", type=int, default=9344)
    z.add_argument("--rungs", default="ladder")
    z.add_argument("--seeds", default="0,1,2")
    z.add_argument("--first", help="also print these rungs' names (FIRST=...)")
    z.add_argument("--jobs", type=int, required=True)
    z.add_argument("--budget", type=float, required=True)
    z.add_argument("--tv-factor", type=int, default=3)
    z.add_argument("--safety", type=float, default=0.85)
    z.add_argument("--min-epochs", type=int, default=1)
    z.add_argument("--max-epochs", type=int, default=15)
    z.add_argument("--fixed", type=int, help="use these epochs; print the sizing beside them")
    z.add_argument("--json")
    z.set_defaults(fn=cmd_size)

    k = sub.add_parser("cache", help="decode the data into the tensor cache once")
    k.add_argument("--rungs", default="micro,resnet50")
    k.add_argument("overrides", nargs="*")
    k.set_defaults(fn=cmd_cache)

    b = sub.add_parser("bench", help="ladder/benchmark.py, optionally another compile backend")
    b.add_argument("--compile-backend")
    b.add_argument("args", nargs="*")
    b.set_defaults(fn=cmd_bench)

    a = p.parse_args(argv)
    if a.cmd == "train" and not a.expect_rc:
        a.expect_rc = [0]
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
