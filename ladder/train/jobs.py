"""Concurrent, resumable ``train.py`` jobs: the runner behind the sweep (:mod:`.sweep`,
scripts/sweep.py) and leave-one-out (:mod:`.loo`, scripts/loo.py).

Each job is one ``python train.py <args> seed=S`` writing into ``OUT/<name>/seed<S>/`` with its
log in ``train.log`` there. Rerunning resumes: train.py skips a job whose result.json says
completed and continues an interrupted one from its checkpoint. Up to ``at_once`` jobs run
together, each with ``threads`` compute threads (default: the available cores / jobs at once), so
concurrent jobs do not oversubscribe the cores (two 2-thread jobs on 2 cores trained 13x slower
than one, results/benchmarks/README.md).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ladder.utils.runtime import available_cores

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Job:
    name: str  # the run's folder under OUT
    args: tuple[str, ...]  # train.py arguments besides the seed (e.g. "+rung=micro", overrides)
    seed: int
    run_suffix: str = ""  # appended to the seed folder: seed<k><suffix> (e.g. "-budget2")


def default_threads(at_once: int) -> int:
    return max(1, available_cores() // max(1, at_once))


def run_jobs(jobs: list[Job], out: Path, *, at_once: int = 1, threads: int | None = None,
             overrides: Sequence[str] = (), tag: str = "sweep") -> int:
    """Run ``jobs``; print one line per finished job and the failures at the end. Returns 1 if
    any job failed, else 0."""
    threads = threads or default_threads(at_once)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"[{tag}] {len(jobs)} jobs, {at_once} at once, {threads} threads each, into {out}",
          flush=True)

    def run(job: Job) -> tuple[Job, int]:
        run_dir = out / job.name / f"seed{job.seed}{job.run_suffix}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(REPO / "train.py"), *job.args, f"seed={job.seed}",
               f"hydra.run.dir={run_dir}", f"logger.group={out.name}", "trainer.progress=false",
               *overrides]
        t0 = time.time()
        with open(run_dir / "train.log", "a") as log:
            code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=REPO).returncode
        tail = (run_dir / "train.log").read_text().strip().splitlines()[-1:]
        print(f"[{tag}] {job.name} seed {job.seed}{job.run_suffix}: exit {code} in {time.time() - t0:.0f}s | "
              f"{tail[0] if tail else ''}", flush=True)
        return job, code

    t0 = time.time()
    with ThreadPoolExecutor(at_once) as pool:
        results = list(pool.map(run, jobs))
    failed = [(job, code) for job, code in results if code != 0]
    print(f"[{tag}] done in {time.time() - t0:.0f}s: {len(jobs) - len(failed)} ok, "
          f"{len(failed)} failed" + "".join(f"\n[{tag}]   failed: {j.name} seed {j.seed}{j.run_suffix} "
                                           f"(exit {c})" for j, c in failed), flush=True)
    return 1 if failed else 0
