"""A sweep of rungs (or timm backbones) x seeds [x budgets] as concurrent, resumable train.py
processes (scripts/sweep.py): which rungs, in which order, into which folders.

Each job is one ``python train.py +rung=R seed=S <overrides>`` (``backbone=B`` for backbones: any
timm model, :mod:`.subject`) writing to ``OUT/<rung or backbone>/seed<seed>/`` (OUT:
``multirun/<experiment>`` by default, ``multirun/<experiment>-backbones`` for backbones): the
same layout as ``train.py -m``, so ``scripts/roadmap.py OUT`` reports it. Rerunning resumes (a
completed job is skipped by train.py, an interrupted one continues from its checkpoint); up to
``at_once`` jobs run together, on ``placement``'s GPUs (:mod:`.jobs`: one job per GPU, several
GPUs per job under torchrun, or several jobs per GPU). ``first`` starts the jobs of those rungs
(all seeds, rung by rung) before the others, so a sweep cut short by a time limit has finished
them.
Budgets run every job at each ``trainer.budget``, budget B's runs in
``OUT/<rung>/seed<seed>-budget<B>/`` (budget 1: ``seed<seed>``), the folders
``train.py -m trainer.budget=1,2,4`` makes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ladder.ladders import rungs
from ladder.train.jobs import REPO, Job, Placement, run_jobs


def rung_list(spec: str, ladder: str | None = None) -> list[str]:
    """'ladder' (every rung), 'milestones', or a comma-separated list of rung names, read from
    the ladder file as ``+sweep=<spec>`` reads it (conf/ladder/<ladder>.yaml, default
    convnext)."""
    from ladder.ladders.conf_store import sweep_rungs

    return sweep_rungs(spec, ladder=ladder)


def ladder_of(overrides: Sequence[str]) -> str | None:
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


def budget_list(spec: str | None, overrides: Sequence[str]
                ) -> tuple[list[float] | None, list[str]]:
    """The budgets from ``--budgets`` (comma-separated numbers > 0, repeats dropped), or from a
    ``trainer.budget=B`` override, which then leaves the overrides so that the job's folder
    and its budget agree; (None, overrides) when neither is given."""
    overrides = list(overrides)
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


def default_out(overrides: Sequence[str], backbones: bool = False) -> str:
    """``multirun/<experiment>``: the ``experiment=`` override, else the preset's (default
    demo); ``-backbones`` appended for a sweep of backbones."""
    experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")),
                      None)
    if experiment is None:
        preset = next((o.split("=", 1)[1] for o in overrides if o.startswith("preset=")), "demo")
        import yaml

        experiment = yaml.safe_load((REPO / "conf" / "preset" / f"{preset}.yaml").read_text())[
            "experiment"]
    return f"multirun/{experiment}" + ("-backbones" if backbones else "")


def run_sweep(*, rungs_spec: str = "milestones", backbones: Sequence[str] | None = None,
              first: str | None = None, seeds: Sequence[int] = (0,), budgets: str | None = None,
              at_once: int = 1, threads: int | None = None, out: Path | str | None = None,
              config_dirs: Sequence[str] = (), overrides: Sequence[str] = (),
              placement: Placement | None = None) -> int:
    """Every (rung or backbone, seed[, budget]) job, the ``first`` rungs' ahead, on
    ``placement``'s GPUs (:func:`.jobs.plan_placement`); the exit status of
    :func:`.jobs.run_jobs` (1 if any job failed). An unknown rung raises ValueError before any
    job runs."""
    config_dirs = [str(Path(d).expanduser().resolve()) for d in config_dirs]
    rungs.set_search_path(config_dirs)
    hydra_args = tuple(a for d in config_dirs for a in ("--config-dir", d))
    ladder = ladder_of(overrides)
    names = list(backbones) if backbones else rung_list(rungs_spec, ladder)
    switch = "backbone=" if backbones else "+rung="
    seeds = list(seeds)
    budget_values, overrides = budget_list(budgets, overrides)
    if placement is not None and placement.groups:
        pinned = [o for o in overrides if o.split("=", 1)[0] == "trainer.device"
                  and o.split("=", 1)[1].startswith("cuda:")]
        if pinned:
            raise SystemExit(f"sweep: error: {pinned[0]} puts every job on one GPU, against the "
                             "placement: leave it out (each job gets its GPUs as "
                             "CUDA_VISIBLE_DEVICES) or give --gpus none.")
    out = out if out is not None else default_out(overrides, bool(backbones))
    what = (f"{len(names)} {'backbones' if backbones else 'rungs'} x {len(seeds)} seeds"
            + (f" x {len(budget_values)} budgets" if budget_values else "") + ": ")
    if budget_values is None:
        jobs = [Job(name, (*hydra_args, f"{switch}{name}"), seed)
                for seed in seeds for name in names]
    else:
        from ladder.ladders.conf_store import budget_suffix  # the suffix Hydra's run dir uses

        jobs = [Job(name, (*hydra_args, f"{switch}{name}", f"trainer.budget={b:g}"), seed,
                    budget_suffix(b))
                for b in budget_values for seed in seeds for name in names]
    if first:
        jobs = first_jobs(jobs, rung_list(first, ladder), ladder)
    return run_jobs(jobs, Path(out), at_once=at_once, threads=threads, overrides=overrides,
                    tag="sweep", placement=placement, what=what)
