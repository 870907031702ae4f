"""Run a sweep of rungs x seeds as concurrent train.py processes, resumably.

    python scripts/sweep.py --rungs milestones --seeds 0,1 --jobs 2 -- preset=imagenette_cpu
    python scripts/sweep.py --rungs ladder --seeds 0,1,2 --gpus auto -- preset=imagenette_gpu
    python scripts/sweep.py --rungs ladder --seeds 0,1 -- ladder=bag_of_tricks
    python scripts/sweep.py --config-dir my_conf --rungs ladder -- ladder=mine
    python scripts/sweep.py --backbones resnet50,convnext_tiny,vit_small_patch16_224 --seeds 0,1 \
        -- recipe=modern trainer.measure_latency=true

Each job is one ``python train.py +rung=R seed=S <overrides>`` (``backbone=B`` with
``--backbones``: any timm model, ladder/train/subject.py) writing to
``OUT/<rung or backbone>/seed<seed>/`` (OUT: ``multirun/<experiment>`` by default,
``multirun/<experiment>-backbones`` with ``--backbones``): the same layout as
``train.py -m``, so ``scripts/roadmap.py OUT`` reports it. Rerunning the command resumes: a job
whose result.json says completed is skipped by train.py, an interrupted one continues from its
checkpoint. Up to ``--jobs`` run at once (ladder/train/jobs.py), each with ``--threads`` compute
threads (default: the available cores / processes at once). Failed jobs are listed at the end,
exit status 1; SIGTERM stops the running jobs at a checkpoint (exit 75: rerun to resume).
``--gpus`` (default ``auto``: every visible GPU) gives each job its own ``CUDA_VISIBLE_DEVICES``:
one GPU, or ``--gpus-per-job K`` under torchrun, held until it ends; one job per GPU at once,
``--jobs-per-gpu M`` for small proxies (``--jobs 16`` on 8 GPUs: two per card); the first line
names the placement. ``--first milestones`` starts the milestones' jobs (all seeds, rung by rung)
before the other rungs', so a sweep cut short by a time limit has finished those first.
``--budgets 1,2,4`` runs every job at each ``trainer.budget`` (which multiplies every rung's
epochs alike), budget B's runs in ``OUT/<rung>/seed<seed>-budget<B>/`` (budget 1:
``seed<seed>``), the folders ``train.py -m trainer.budget=1,2,4`` makes, so
``scripts/roadmap.py OUT --view budget`` reports them. The sweep itself: ladder/train/sweep.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # without `pip install -e .`

from ladder.train.jobs import plan_placement  # noqa: E402
from ladder.train.sweep import run_sweep  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", default="milestones",
                        help="ladder, milestones, or rung names separated by commas")
    parser.add_argument("--backbones", default=None,
                        help="timm model names separated by commas, instead of --rungs")
    parser.add_argument("--first", default=None, help="rungs (ladder, milestones, or names) "
                        "whose jobs, every seed, go ahead of the others, rung by rung in order")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--budgets", default=None, help="trainer.budget values (e.g. 1,2,4): "
                        "every job at each, into seed<k>-budget<B> folders (budget 1: seed<k>)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="jobs at once (default 1; with GPUs, one per GPU or --jobs-per-gpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per process (default: cores // processes at once)")
    parser.add_argument("--gpus", default="auto", help="auto (every visible GPU), none, a number "
                        "N (the first N), or indices separated by commas: 0,1,5 (one GPU: 5,)")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per job (torchrun)")
    parser.add_argument("--jobs-per-gpu", type=int, default=None,
                        help="jobs sharing each GPU (each --gpus-per-job group) at once")
    parser.add_argument("--out", default=None, help="sweep folder (default multirun/<experiment>)")
    parser.add_argument("--config-dir", action="append", default=[], help="a config directory "
                        "of your own (Hydra's --config-dir), passed to every job; repeatable")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --), "
                                                     "e.g. ladder=bag_of_tricks")
    args = parser.parse_args(argv)
    try:
        placement, at_once = plan_placement(args.gpus, args.gpus_per_job, args.jobs_per_gpu,
                                            args.jobs)
    except ValueError as err:
        parser.error(str(err))
    return run_sweep(rungs_spec=args.rungs,
                     backbones=args.backbones.split(",") if args.backbones else None,
                     first=args.first, seeds=[int(s) for s in args.seeds.split(",")],
                     budgets=args.budgets, at_once=at_once, threads=args.threads, out=args.out,
                     config_dirs=args.config_dir, overrides=args.overrides, placement=placement)


if __name__ == "__main__":
    sys.exit(main())
