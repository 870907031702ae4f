"""Run a sweep of rungs x seeds as concurrent train.py processes, resumably.

    python scripts/sweep.py --rungs milestones --seeds 0,1 --jobs 2 -- preset=imagenette_cpu
    python scripts/sweep.py --rungs ladder --seeds 0,1,2 --jobs 8 --out runs/gpu -- preset=imagenette_gpu
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
checkpoint. Up to ``--jobs`` run at once (ladder/train/jobs.py), each with ``--threads`` compute threads
(default: the available cores / jobs), so concurrent jobs do not oversubscribe the cores; on one GPU they
share the card. Failed jobs are listed at the end and the exit status is 1 if any failed.
``--first milestones`` starts the milestones' jobs (all seeds, rung by rung) before the other
rungs', so a sweep cut short by a time limit has finished those first.
``--budgets 1,2,4`` runs every job at each ``trainer.budget`` (which multiplies every rung's
epochs alike), budget B's runs in ``OUT/<rung>/seed<seed>-budget<B>/`` (budget 1: ``seed<seed>``),
the folders ``train.py -m trainer.budget=1,2,4`` makes, so ``scripts/roadmap.py OUT --view
budget`` reports them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ladder.ladders import rungs  # noqa: E402
from ladder.train.jobs import Job, run_jobs  # noqa: E402


def rung_list(spec: str, ladder: str | None = None) -> list[str]:
    """'ladder' (every rung), 'milestones', or a comma-separated list of rung names, read from
    the ladder file as ``+sweep=<spec>`` reads it (conf/ladder/<ladder>.yaml, default
    convnext)."""
    from ladder.ladders.conf_store import sweep_rungs

    return sweep_rungs(spec, ladder=ladder)


def ladder_of(overrides: list[str]) -> str | None:
    """The ladder a ``ladder=<name>`` override selects for every job, if any."""
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("ladder=")), None)


def first_jobs(jobs: list[Job], first: list[str], ladder: str | None = None) -> list[Job]:
    """``jobs`` with those of the rungs in ``first`` (names or milestone aliases) ahead, rung by
    rung in ``first``'s order, all seeds of a rung together; the rest keep their order."""
    def canonical(name: str) -> str:
        try:
            return rungs.load_ladder(ladder or rungs.DEFAULT_LADDER).resolve(name).name
        except ValueError:  # a backbone
            return name

    rank = {canonical(name): i for i, name in enumerate(first)}
    return sorted(jobs, key=lambda job: rank.get(canonical(job.name), len(rank)))


def budget_list(spec: str | None, overrides: list[str]) -> tuple[list[float] | None, list[str]]:
    """The budgets from ``--budgets`` (comma-separated numbers > 0, repeats dropped), or from a
    ``trainer.budget=B`` override, which then leaves the overrides so that the job's folder
    and its budget agree; (None, overrides) when neither is given."""
    given = [o for o in overrides if o.split("=", 1)[0].lstrip("+") == "trainer.budget"]
    if given and spec:
        raise SystemExit("sweep: error: give the budgets either with --budgets or as a "
                         "trainer.budget= override, not both.")
    if given:
        spec = ",".join(o.split("=", 1)[1] for o in given)
        overrides = [o for o in overrides if o not in given]
    if not spec:
        return None, overrides
    budgets: list[float] = []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        try:
            b = float(part)
        except ValueError:
            raise SystemExit(f"sweep: error: budget {part!r} is not a number.") from None
        if not b > 0 or b == float("inf"):
            raise SystemExit(f"sweep: error: budget {part} is not valid: a budget multiplies "
                             "every rung's epochs and must be a number > 0.")
        if b not in budgets:
            budgets.append(b)
    return budgets, overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", default="milestones",
                        help="ladder, milestones, or rung names separated by commas")
    parser.add_argument("--backbones", default=None,
                        help="timm model names separated by commas, instead of --rungs")
    parser.add_argument("--first", default=None,
                        help="rungs (ladder, milestones, or names) whose jobs, every seed, go "
                             "ahead of the others, rung by rung in the order given")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--budgets", default=None,
                        help="comma-separated trainer.budget values (e.g. 1,2,4): every job at "
                             "each, into seed<k>-budget<B> folders (budget 1: seed<k>)")
    parser.add_argument("--jobs", type=int, default=1, help="jobs at once")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: cores // jobs, at least 1)")
    parser.add_argument("--out", default=None, help="sweep folder (default multirun/<experiment>)")
    parser.add_argument("--config-dir", action="append", default=[],
                        help="a config directory of your own (its ladder/ and rung/ files, "
                             "Hydra's --config-dir), passed to every job; repeatable")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --), "
                                                     "e.g. ladder=bag_of_tricks")
    args = parser.parse_args(argv)

    config_dirs = [str(Path(d).expanduser().resolve()) for d in args.config_dir]
    rungs.set_search_path(config_dirs)
    hydra_args = tuple(a for d in config_dirs for a in ("--config-dir", d))
    ladder = ladder_of(args.overrides)
    names = (args.backbones.split(",") if args.backbones
             else rung_list(args.rungs, ladder))
    switch = "backbone=" if args.backbones else "+rung="
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets, overrides = budget_list(args.budgets, args.overrides)
    out = args.out
    if out is None:
        experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")),
                          None)
        if experiment is None:
            preset = next((o.split("=", 1)[1] for o in overrides if o.startswith("preset=")),
                          "demo")
            import yaml

            experiment = yaml.safe_load((REPO / "conf" / "preset" / f"{preset}.yaml").read_text())[
                "experiment"]
        out = f"multirun/{experiment}" + ("-backbones" if args.backbones else "")
    print(f"[sweep] {len(names)} {'backbones' if args.backbones else 'rungs'} x {len(seeds)} "
          f"seeds" + (f" x {len(budgets)} budgets" if budgets else ""), flush=True)
    if budgets is None:
        jobs = [Job(name, (*hydra_args, f"{switch}{name}"), seed)
                for seed in seeds for name in names]
    else:
        from ladder.ladders.conf_store import budget_suffix  # the suffix Hydra's run dir uses

        jobs = [Job(name, (*hydra_args, f"{switch}{name}", f"trainer.budget={b:g}"), seed,
                    budget_suffix(b))
                for b in budgets for seed in seeds for name in names]
    if args.first:
        jobs = first_jobs(jobs, rung_list(args.first, ladder), ladder)
    return run_jobs(jobs, Path(out), at_once=args.jobs, threads=args.threads,
                    overrides=overrides, tag="sweep")


if __name__ == "__main__":
    sys.exit(main())
