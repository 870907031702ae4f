"""Running a proxy calibration grid (conf/calibration/<grid>.yaml) as concurrent, resumable
train.py jobs: the first phase (each recipe's base and one setting changed at a time) and the
confirmation of the adopted values together. ``scripts/calibrate.py`` is its command line."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ladder.ladders.calibration import Grid, confirm_run, grid_runs
from ladder.train.jobs import Job, run_jobs


def phase_jobs(grid: Grid, recipes: list[str] | None = None) -> list[Job]:
    """One job per (grid run, seed), bases first so a cut-short grid has its noise measured."""
    return [Job(name, args, seed) for name, args, seeds in grid_runs(grid, recipes)
            for seed in seeds]


def confirm_jobs(grid: Grid, recipe: str, adopted: dict[str, Any]) -> list[Job]:
    name, args, seeds = confirm_run(grid, recipe, adopted)
    return [Job(name, args, seed) for seed in seeds]


def run_grid(jobs: list[Job], out: Path, at_once: int, threads: int | None,
             overrides: Sequence[str]) -> int:
    return run_jobs(jobs, out, at_once=at_once, threads=threads, overrides=overrides,
                    tag="calibrate")
