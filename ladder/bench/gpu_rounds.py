"""Concurrency rounds and the sweep's sizing for scripts/gpu_check.sh and scripts/gpu_ladder.sh
(the subcommands round and size of scripts/gpu_steps.py, :mod:`.gpu_steps`): how many images n train.py jobs train
at once on one device, and the epochs that throughput fits into the ladder's time budget.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from ladder.bench.gpu_runs import BANNER_LAST, EPOCH, REPO, Term, parse_train_log
from ladder.bench.gpu_summary import read_json, write_json_atomic

# The one rung trained with the torchvision recipe (conf/rung/resnet50.yaml); its preset budget
# is a multiple of the modern recipe's epochs (imagenette_gpu: 45 = 3 x 15).
TORCHVISION_RUNGS = ("resnet50",)


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
    measure: the images all jobs trained over the window, sum over jobs of images / window.
    The checkpoint reader (torch) is imported before the jobs start: a round that could not
    read them fails before it spends its window."""
    from ladder.utils.checkpoint import CheckpointError, load

    term = Term()
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
    from ladder.ladders.conf_store import sweep_rungs as read  # resolves ${ladder_rungs:...}

    return list(read(spec))


def cmd_size(a) -> int:
    """Epochs for the ladder sweep from a measured per-job throughput (see gpu_ladder.sh).
    Exit 1, after printing the epochs from the assumed throughput, when the calibration round
    given (--round) measured none: the sweep still gets epochs, and the summary a failed step."""
    source, r, s, p = None, None, None, None
    no_round = None  # why the --round file gave no throughput
    if a.round:
        data = read_json(a.round)
        if data is None:
            no_round = f"the calibration round wrote no {a.round}"
        elif not data.get("per_job_img_per_s"):
            no_round = (f"the calibration round measured no throughput "
                        f"({data.get('jobs_trained', 0)} of {data.get('n', '?')} jobs trained)")
        else:
            source = f"measured: {a.round} ({data['n']} jobs at once, {data['window_s']} s windows)"
            r, s, p = data["per_job_img_per_s"], data.get("startup_s"), data.get("images_per_epoch")
    if r is None and a.rate_from and (data := read_json(a.rate_from)):
        step = next((st for st in data.get("steps", [])
                     if st["name"] == f"concurrency_n{a.jobs}" and st.get("status") == "ok"), None)
        if step and step.get("numbers", {}).get("per_job_img_per_s"):
            n = step["numbers"]
            source = (f"measured by gpu_check.sh: {a.rate_from}, {step['name']} on "
                      f"{data.get('device', '?')}")
            r, s, p = n["per_job_img_per_s"], n.get("startup_s"), n.get("images_per_epoch")
    assumed = r is None
    if assumed:
        source = (f"ASSUMED, not measured: {a.assume_img_s:g} img/s per job at {a.jobs} jobs at "
                  f"once, {a.assume_startup_s:g} s start-up; replace by a measurement "
                  f"(gpu_check.sh's concurrency rounds)")
        if no_round:
            source = f"ASSUMED because {no_round}: " + source[len("ASSUMED, "):]
        r, s = a.assume_img_s, a.assume_startup_s
    s = (s if s is not None else a.assume_startup_s) + a.end_s
    p = p or a.images_per_epoch
    names = sweep_rungs(a.rungs)
    seeds = [x for x in a.seeds.split(",") if x.strip()]
    n_jobs = len(names) * len(seeds)
    from ladder.ladders.rungs import resolve

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
    if no_round and assumed and not a.fixed:
        print(f"[size] error: {no_round}; the epochs above come from the ASSUMED throughput",
              flush=True)
        return 1
    return 0
