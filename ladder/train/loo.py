"""Leave-one-out from the top: each architectural change of the ladder undone alone at ConvNeXt-T,
as one resumable sweep of train.py jobs (scripts/loo.py). The changes are generated from the rung
files and the jobs listed by :func:`ladder.ladders.variants.loo_jobs`, not by hand.

Jobs, per seed: the top, every change the schema accepts (``OUT/undo_<step>/seed<seed>/``), and
the ladder rungs each change is measured between on the ladder (``OUT/<rung>/seed<seed>/``, the
layout of scripts/sweep.py, so pointing ``out`` at a finished ladder sweep of the same budget
reuses its runs: a completed run is skipped). Rerunning resumes. Jobs run as in
scripts/sweep.py (:mod:`.jobs`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ladder.ladders import rungs
from ladder.ladders.variants import leave_one_out, loo_jobs
from ladder.train.jobs import Job, run_jobs
from ladder.train.sweep import ladder_of


def print_list(top: str | None, ladder_name: str | None = None) -> None:
    """The changes at ``top``: name, label, the ladder step, the overrides or the schema's
    refusal, and the steps left out."""
    undos, skipped = leave_one_out(top, ladder_name)
    print(f"Leave-one-out at {undos[0].top}: {len(undos)} architectural changes "
          f"({sum(not u.refused for u in undos)} valid)")
    for u in undos:
        ladder = f"ladder: {u.before} -> {u.after}"
        print(f"  {u.name:28s} {u.label:50s} {ladder}")
        print(f"  {'':28s} " + (f"REFUSED by the schema: {u.refused}" if u.refused
                                else " ".join(u.overrides())))
    for rung, reason in skipped:
        print(f"  not a change of the architecture: {rung} ({reason})")


def run_loo(*, seeds: Sequence[int] = (0,), top: str | None = None, with_ladder: bool = True,
            only: list[str] | None = None, out: Path | str = "multirun/loo", at_once: int = 1,
            threads: int | None = None, config_dirs: Sequence[str] = (),
            overrides: Sequence[str] = (), list_only: bool = False) -> int:
    """Run the leave-one-out sweep (or, ``list_only``, print its changes); the exit status of
    :func:`.jobs.run_jobs`. An unknown name in ``only`` raises ValueError before any job."""
    config_dirs = [str(Path(d).expanduser().resolve()) for d in config_dirs]
    rungs.set_search_path(config_dirs)
    hydra_args = tuple(a for d in config_dirs for a in ("--config-dir", d))
    ladder_name = ladder_of(overrides)
    if list_only:
        print_list(top, ladder_name)
        return 0
    seeds = list(seeds)
    planned = loo_jobs(seeds, top, with_ladder, only, ladder_name)
    print(f"[loo] {len(planned) // len(seeds)} jobs per seed x {len(seeds)} seeds", flush=True)
    jobs = []
    for name, rung, extra, seed in planned:
        tags = "[loo]" if name == rung else f"[loo,'{name}']"
        jobs.append(Job(name, (*hydra_args, f"+rung={rung}", *extra, f"logger.tags={tags}"),
                        seed))
    return run_jobs(jobs, Path(out), at_once=at_once, threads=threads, overrides=overrides,
                    tag="loo")
