"""Run a sweep of rungs x seeds as concurrent train.py processes, resumably.

    python scripts/sweep.py --rungs milestones --seeds 0,1 --jobs 2 -- preset=imagenette_cpu
    python scripts/sweep.py --rungs ladder --seeds 0,1,2 --jobs 8 --out runs/gpu -- preset=imagenette_gpu
    python scripts/sweep.py --backbones resnet50,convnext_tiny,vit_small_patch16_224 --seeds 0,1 \
        -- recipe=modern trainer.measure_latency=true

Each job is one ``python train.py +rung=R seed=S <overrides>`` (``backbone=B`` with
``--backbones``: any timm model, ladder/subject.py) writing to
``OUT/<rung or backbone>/seed<seed>/`` (OUT: ``multirun/<experiment>`` by default,
``multirun/<experiment>-backbones`` with ``--backbones``): the same layout as
``train.py -m``, so ``scripts/roadmap.py OUT`` reports it. Rerunning the command resumes: a job
whose result.json says completed is skipped by train.py, an interrupted one continues from its
checkpoint. Up to ``--jobs`` run at once (ladder/jobs.py), each with ``--threads`` compute threads
(default: the available cores / jobs), so concurrent jobs do not oversubscribe the cores; on one GPU they
share the card. Failed jobs are listed at the end and the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ladder import rungs  # noqa: E402
from ladder.jobs import Job, run_jobs  # noqa: E402


def rung_list(spec: str) -> list[str]:
    """'ladder' (all 17), 'milestones' (7), or a comma-separated list of rung names."""
    import yaml

    sweep_file = REPO / "conf" / "sweep" / f"{spec}.yaml"
    if sweep_file.exists():
        spec = yaml.safe_load(sweep_file.read_text())["hydra"]["sweeper"]["params"]["+rung"]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        rungs.resolve(name)  # a clear error for unknown names
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", default="milestones",
                        help="ladder, milestones, or rung names separated by commas")
    parser.add_argument("--backbones", default=None,
                        help="timm model names separated by commas, instead of --rungs")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=1, help="jobs at once")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: cores // jobs, at least 1)")
    parser.add_argument("--out", default=None, help="sweep folder (default multirun/<experiment>)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --)")
    args = parser.parse_args(argv)

    names = args.backbones.split(",") if args.backbones else rung_list(args.rungs)
    switch = "backbone=" if args.backbones else "+rung="
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out
    if out is None:
        experiment = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("experiment=")),
                          None)
        if experiment is None:
            preset = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("preset=")),
                          "demo")
            import yaml

            experiment = yaml.safe_load((REPO / "conf" / "preset" / f"{preset}.yaml").read_text())[
                "experiment"]
        out = f"multirun/{experiment}" + ("-backbones" if args.backbones else "")
    print(f"[sweep] {len(names)} {'backbones' if args.backbones else 'rungs'} x {len(seeds)} "
          f"seeds", flush=True)
    jobs = [Job(name, (f"{switch}{name}",), seed) for seed in seeds for name in names]
    return run_jobs(jobs, Path(out), at_once=args.jobs, threads=args.threads,
                    overrides=args.overrides, tag="sweep")


if __name__ == "__main__":
    sys.exit(main())
