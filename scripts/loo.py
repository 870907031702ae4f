"""Leave-one-out from the top: each architectural change of the ladder undone alone at ConvNeXt-T,
as one resumable sweep of train.py jobs (the changes are generated from the rung files by
ladder/ladders/variants.py, not listed by hand).

    python scripts/loo.py --list                       # the changes, their overrides, the refused
    python scripts/loo.py --list -- ladder=bag_of_tricks   # another ladder: at ResNet-50-D...
    python scripts/loo.py --seeds 0,1 --jobs 2 --out multirun/loo -- preset=demo logger=none
    python scripts/roadmap.py multirun/loo --view loo  # each change at the top beside the ladder

Jobs, per seed: the top, every change the schema accepts (``OUT/undo_<step>/seed<seed>/``), and
the ladder rungs each change is measured between on the ladder (``OUT/<rung>/seed<seed>/``, the
layout of scripts/sweep.py, so pointing --out at a finished ladder sweep of the same budget
reuses its runs: a completed run is skipped). Rerunning resumes; ``--no-ladder`` runs only the
top and its variants. Jobs run as in scripts/sweep.py (ladder/train/jobs.py), each with ``--threads``
compute threads (default: the available cores / jobs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ladder.ladders import rungs  # noqa: E402
from ladder.train.jobs import Job, run_jobs  # noqa: E402
from ladder.ladders.variants import leave_one_out  # noqa: E402


def jobs_for(seeds: list[int], top: str | None, with_ladder: bool,
             only: list[str] | None = None, ladder_name: str | None = None
             ) -> list[tuple[str, str, list[str], int]]:
    """(run name, rung, overrides, seed) for every job, seed by seed: top, variants, ladder."""
    undos, _ = leave_one_out(top, ladder_name)
    top = undos[0].top
    if only:
        unknown = set(only) - {u.name for u in undos}
        if unknown:
            raise SystemExit(f"loo: unknown change(s) {', '.join(sorted(unknown))}; see --list")
        undos = [u for u in undos if u.name in only]
    ladder = []
    for u in undos:
        ladder += [r for r in (u.before, u.after) if r not in ladder and r != top]
    out = []
    for seed in seeds:
        out.append((top, top, [], seed))
        out += [(u.name, top, u.overrides(), seed) for u in undos if not u.refused]
        if with_ladder:
            out += [(r, r, [], seed) for r in ladder]
    return out


def print_list(top: str | None, ladder_name: str | None = None) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the changes and exit")
    parser.add_argument("--top", default=None, help="the rung to undo changes at (default: "
                                                    "ConvNeXt-T)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=1, help="jobs at once")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: cores // jobs, at least 1)")
    parser.add_argument("--out", default="multirun/loo", help="sweep folder")
    parser.add_argument("--only", default=None,
                        help="comma-separated change names (undo_...) to run, default all")
    parser.add_argument("--no-ladder", action="store_true",
                        help="only the top and its variants, not the ladder rungs")
    parser.add_argument("--config-dir", action="append", default=[],
                        help="a config directory of your own (its ladder/ and rung/ files), "
                             "passed to every job; repeatable")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --), "
                                                     "e.g. ladder=bag_of_tricks")
    args = parser.parse_args(argv)
    config_dirs = [str(Path(d).expanduser().resolve()) for d in args.config_dir]
    rungs.set_search_path(config_dirs)
    hydra_args = tuple(a for d in config_dirs for a in ("--config-dir", d))
    ladder_name = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("ladder=")),
                       None)
    if args.list:
        print_list(args.top, ladder_name)
        return 0

    seeds = [int(s) for s in args.seeds.split(",")]
    planned = jobs_for(seeds, args.top, not args.no_ladder,
                       args.only.split(",") if args.only else None, ladder_name)
    print(f"[loo] {len(planned) // len(seeds)} jobs per seed x {len(seeds)} seeds", flush=True)
    jobs = []
    for name, rung, overrides, seed in planned:
        tags = "[loo]" if name == rung else f"[loo,'{name}']"
        jobs.append(Job(name, (*hydra_args, f"+rung={rung}", *overrides, f"logger.tags={tags}"),
                        seed))
    return run_jobs(jobs, Path(args.out), at_once=args.jobs, threads=args.threads,
                    overrides=args.overrides, tag="loo")


if __name__ == "__main__":
    sys.exit(main())
