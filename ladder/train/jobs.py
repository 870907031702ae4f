"""Concurrent, resumable ``train.py`` jobs: the runner behind the sweep (:mod:`.sweep`,
scripts/sweep.py) and leave-one-out (:mod:`.loo`, scripts/loo.py).

Each job is one ``python train.py <args> seed=S`` writing into ``OUT/<name>/seed<S>/`` with its
log in ``train.log`` there. Rerunning resumes: a job whose result.json says completed is
skipped without starting a process (train.py would skip it too, after seconds of start-up), and
an interrupted one continues from its checkpoint. Up to ``at_once`` jobs run
together, each with ``threads`` compute threads (default: the available cores / the processes
running at once), so concurrent jobs do not oversubscribe the cores (two 2-thread jobs on 2 cores
trained 13x slower than one, results/benchmarks/README.md).

GPU placement (:class:`Placement`, :func:`plan_placement`): the node's GPUs form slots, one GPU
each, or ``K`` GPUs each for jobs under torchrun (``python -m torch.distributed.run
--nproc_per_node K``, each job on its own rendezvous port), every slot shared by ``jobs_per_gpu``
jobs at once. A job takes a free slot when it starts and holds it until it ends, so a freed GPU
goes to the next job; its ``CUDA_VISIBLE_DEVICES`` names the slot's GPUs, and the trainer takes
its local rank's GPU among them (ladder/utils/runtime.py ``pick_device``). Without a placement
the jobs inherit the environment's GPUs: each takes the first visible one.

SIGTERM to the runner is passed on to the running jobs, which checkpoint and exit (75, as
train.py does); no further job starts, and the runner waits for them and exits with 75, so
rerunning the command resumes (scripts/slurm_example.sh requeues a sweep this way).
"""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ladder.train.run_results import completed_result
from ladder.utils.runtime import available_cores

REPO = Path(__file__).resolve().parents[2]
STOPPED = 75  # the exit status of a run stopped by a signal after its checkpoint (train.py's)


@dataclass(frozen=True)
class Job:
    name: str  # the run's folder under OUT
    args: tuple[str, ...]  # train.py arguments besides the seed (e.g. "+rung=micro", overrides)
    seed: int
    run_suffix: str = ""  # appended to the seed folder: seed<k><suffix> (e.g. "-budget2")


@dataclass(frozen=True)
class Placement:
    """The GPUs jobs run on: ``groups`` (each one job's ``CUDA_VISIBLE_DEVICES``, its entries as
    the runner sees them), every group shared by ``jobs_per_gpu`` jobs at once. No groups: the
    jobs inherit the environment's GPUs (``visible`` of them)."""
    groups: tuple[tuple[str, ...], ...] = ()
    jobs_per_gpu: int = 1
    idle: tuple[str, ...] = ()  # GPUs placed but left out: too few to fill one more group
    visible: int = 0

    @property
    def per_job(self) -> int:
        return len(self.groups[0]) if self.groups else 0

    def slots(self) -> list[tuple[str, ...]]:
        """Every group ``jobs_per_gpu`` times, round-robin, so that jobs spread over the GPUs
        before any GPU gets a second one."""
        return [group for _ in range(self.jobs_per_gpu) for group in self.groups]

    def describe(self) -> str:
        if not self.groups:
            return (f"GPUs not placed: each job uses the first of the {self.visible} visible"
                    if self.visible else "")
        gpus = [gpu for group in self.groups for gpu in group]
        where = f"GPU{'s' if len(gpus) > 1 else ''} {','.join(gpus)}"
        share = f", {self.jobs_per_gpu} jobs per GPU" if self.jobs_per_gpu > 1 else ""
        if self.per_job == 1:
            text = f"on {where}: one job per GPU" if self.jobs_per_gpu == 1 else \
                f"on {where}: {self.jobs_per_gpu} jobs per GPU"
        else:
            text = (f"on {where}: {self.per_job} GPUs per job under torchrun "
                    f"({' | '.join(','.join(g) for g in self.groups)}){share}")
        if self.idle:
            text += f"; GPU{'s' if len(self.idle) > 1 else ''} {','.join(self.idle)} idle"
        return text


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` entries: that variable's own
    entries when it is set (e.g. by SLURM: ``3,5``, or GPU UUIDs), else ``0..n-1``; none without
    CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    listed = [e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
              if e.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def plan_placement(gpus: str = "auto", gpus_per_job: int = 1, jobs_per_gpu: int | None = None,
                   jobs: int | None = None, visible: Sequence[str] | None = None
                   ) -> tuple[Placement, int]:
    """The placement and the jobs at once for ``--gpus`` (``auto``: every visible GPU, none
    without CUDA; ``none``; a number N: the first N visible; indices separated by commas,
    ``0,1,5``, one GPU as ``5,``; indices count among the visible GPUs), ``--gpus-per-job`` K,
    ``--jobs-per-gpu`` M and ``--jobs``. With GPUs, jobs at once default to the slots (groups of
    K x M); ``--jobs`` alone sets M to what spreads that many jobs over the groups; both given,
    jobs at once are at most the slots. Raises ValueError (one sentence) on a bad value."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs {jobs}: at least one job must run at a time.")
    if gpus_per_job < 1:
        raise ValueError(f"--gpus-per-job {gpus_per_job}: a job needs at least one GPU.")
    if jobs_per_gpu is not None and jobs_per_gpu < 1:
        raise ValueError(f"--jobs-per-gpu {jobs_per_gpu}: at least one job must run on a GPU.")
    visible = list(visible_gpus() if visible is None else visible)
    n = len(visible)
    spec = str(gpus).strip().lower()
    seen = f"{n} {'is' if n == 1 else 'are'} visible" + (f" (0-{n - 1})" if n > 1 else "")
    if spec == "auto":
        chosen = visible
    elif spec in ("none", "0"):
        chosen = []
    elif "," in spec:
        try:
            indices = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            indices = None
        if not indices or min(indices) < 0:
            raise ValueError(f"--gpus {gpus}: give auto, none, a number of GPUs, or GPU indices "
                             "separated by commas (0,1,5; one GPU: 5,).")
        if not visible:
            raise ValueError(f"--gpus {gpus} asks for GPUs, but no CUDA device is visible.")
        missing = [i for i in indices if i >= n]
        if missing:
            raise ValueError(f"--gpus {gpus}: there is no GPU {missing[0]} here, {seen}.")
        twice = [i for i in indices if indices.count(i) > 1]
        if twice:
            raise ValueError(f"--gpus {gpus} names GPU {twice[0]} twice (several jobs per GPU: "
                             "--jobs-per-gpu).")
        chosen = [visible[i] for i in indices]
    elif spec.isdigit():
        if int(spec) > n:
            raise ValueError(f"--gpus {spec} asks for {spec} GPUs, but "
                             + (f"{seen}." if n else "no CUDA device is visible."))
        chosen = visible[:int(spec)]
    else:
        raise ValueError(f"--gpus {gpus}: give auto, none, a number of GPUs, or GPU indices "
                         "separated by commas (0,1,5; one GPU: 5,).")
    if not chosen:
        asked = (f"--gpus-per-job {gpus_per_job}" if gpus_per_job > 1 else
                 f"--jobs-per-gpu {jobs_per_gpu}" if jobs_per_gpu is not None else None)
        if asked:
            why = "no CUDA device is visible" if not visible else f"--gpus {gpus}"
            raise ValueError(f"{asked} places jobs on GPUs, but none are placed ({why}).")
        return Placement(visible=n), jobs or 1
    if gpus_per_job > len(chosen):
        raise ValueError(f"--gpus-per-job {gpus_per_job} is more than the {len(chosen)} "
                         f"GPU{'s' if len(chosen) > 1 else ''} placed (--gpus {gpus}).")
    n_groups = len(chosen) // gpus_per_job
    groups = tuple(tuple(chosen[i * gpus_per_job:(i + 1) * gpus_per_job])
                   for i in range(n_groups))
    idle = tuple(chosen[n_groups * gpus_per_job:])
    if jobs_per_gpu is None:
        jobs_per_gpu = -(-jobs // n_groups) if jobs else 1
        at_once = jobs or n_groups
    else:
        at_once = min(jobs, n_groups * jobs_per_gpu) if jobs else n_groups * jobs_per_gpu
    return Placement(groups, jobs_per_gpu, idle, n), at_once


def default_threads(at_once: int) -> int:
    return max(1, available_cores() // max(1, at_once))


def free_port(taken: set[int]) -> int:
    """A TCP port free on this host now and not in ``taken`` (ports of running jobs)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def job_command(job: Job, run_dir: Path, out: Path, overrides: Sequence[str],
                gpus: tuple[str, ...] = (), port: int | None = None) -> list[str]:
    """The job's command line: ``python train.py ...``, or under torchrun with one process per
    GPU (standalone, on the rendezvous ``port``) for a job of several GPUs."""
    train = [str(REPO / "train.py"), *job.args, f"seed={job.seed}", f"hydra.run.dir={run_dir}",
             f"logger.group={out.name}", "trainer.progress=false", *overrides]
    if len(gpus) <= 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            f"--nproc_per_node={len(gpus)}", "--rdzv_backend=c10d",
            f"--rdzv_endpoint=localhost:{port}", f"--rdzv_id={uuid.uuid4().hex}", *train]


def run_jobs(jobs: list[Job], out: Path, *, at_once: int = 1, threads: int | None = None,
             overrides: Sequence[str] = (), tag: str = "sweep",
             placement: Placement | None = None, what: str = "") -> int:
    """Run ``jobs`` (on ``placement``'s GPUs, if any); print one line first (``what``, the
    jobs, the placement), one per finished job and the failures at the end. Returns 1 if any
    job failed, 75 if SIGTERM stopped the runner, else 0."""
    placement = placement or Placement()
    slots: queue.Queue = queue.Queue()
    for slot in placement.slots():
        slots.put(slot)
    if placement.groups:
        at_once = min(at_once, slots.qsize())
    threads = threads or default_threads(at_once * max(1, placement.per_job))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    where = placement.describe()
    print(f"[{tag}] {what}{len(jobs)} jobs, {at_once} at once, {threads} threads each"
          f"{' per process' if placement.per_job > 1 else ''}{', ' + where if where else ''}, "
          f"into {out}", flush=True)

    lock = threading.Lock()
    stop = threading.Event()
    running: dict[int, subprocess.Popen] = {}
    ports: set[int] = set()

    def run(job: Job) -> tuple[Job, int | None]:
        if stop.is_set():
            return job, None
        gpus = slots.get() if placement.groups else ()
        port = None
        try:
            run_dir = out / job.name / f"seed{job.seed}{job.run_suffix}"
            done = completed_result(run_dir)
            if done is not None:
                top1 = (done.get("metrics") or {}).get("top1")
                shown = f"top-1 {top1:.2f}" if isinstance(top1, (int, float)) else "no top-1"
                print(f"[{tag}] {job.name} seed {job.seed}{job.run_suffix}: already completed "
                      f"({shown}), skipped (delete its result.json to retrain)", flush=True)
                return job, 0
            run_dir.mkdir(parents=True, exist_ok=True)
            job_env = {**env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else env
            t0 = time.time()
            with open(run_dir / "train.log", "a") as log:
                with lock:
                    if stop.is_set():
                        return job, None
                    if len(gpus) > 1:
                        port = free_port(ports)
                        ports.add(port)
                    proc = subprocess.Popen(job_command(job, run_dir, out, overrides, gpus, port),
                                            stdout=log, stderr=subprocess.STDOUT, env=job_env,
                                            cwd=REPO)
                    running[id(proc)] = proc
                try:
                    code = proc.wait()
                finally:
                    with lock:
                        running.pop(id(proc), None)
            tail = (run_dir / "train.log").read_text().strip().splitlines()[-1:]
            print(f"[{tag}] {job.name} seed {job.seed}{job.run_suffix}"
                  f"{' on GPU' + 's' * (len(gpus) > 1) + ' ' + ','.join(gpus) if gpus else ''}: "
                  f"exit {code} in "
                  f"{time.time() - t0:.0f}s | {tail[0] if tail else ''}", flush=True)
            return job, code
        finally:
            with lock:
                ports.discard(port)
            if gpus:
                slots.put(gpus)

    def on_term(signum, frame) -> None:
        first = not stop.is_set()
        with lock:
            stop.set()
            procs = list(running.values())
        if first:
            print(f"[{tag}] SIGTERM: the {len(procs)} running jobs checkpoint and stop; no "
                  "further job starts (rerun the command to resume)", flush=True)
        for proc in procs:
            try:
                proc.send_signal(signal.SIGTERM)
            except (ProcessLookupError, OSError):
                pass

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    t0 = time.time()
    try:
        with ThreadPoolExecutor(at_once) as pool:
            results = list(pool.map(run, jobs))
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    if stop.is_set():
        stopped = [j for j, c in results if c is not None and c != 0]
        left = [j for j, c in results if c is None]
        print(f"[{tag}] stopped by SIGTERM after {time.time() - t0:.0f}s: "
              f"{sum(c == 0 for _, c in results)} ok, {len(stopped)} stopped or failed, "
              f"{len(left)} not started; rerun the command to resume", flush=True)
        return STOPPED
    failed = [(job, code) for job, code in results if code != 0]
    print(f"[{tag}] done in {time.time() - t0:.0f}s: {len(jobs) - len(failed)} ok, "
          f"{len(failed)} failed" + "".join(f"\n[{tag}]   failed: {j.name} seed {j.seed}"
                                           f"{j.run_suffix} (exit {c})" for j, c in failed),
          flush=True)
    return 1 if failed else 0
