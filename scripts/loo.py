"""Leave-one-out from the top: each architectural change of the ladder undone alone at ConvNeXt-T,
as one resumable sweep of train.py jobs (ladder/train/loo.py; the changes come from the rung
files, ladder/ladders/variants.py).

    python scripts/loo.py --list                       # the changes, their overrides, the refused
    python scripts/loo.py --list -- ladder=bag_of_tricks   # another ladder: at ResNet-50-D...
    python scripts/loo.py --seeds 0,1 --jobs 2 --out multirun/loo -- preset=demo logger=none
    python scripts/roadmap.py multirun/loo --view loo  # each change at the top beside the ladder

Jobs, per seed: the top, every change the schema accepts (``OUT/undo_<step>/seed<seed>/``), and
the ladder rungs each change is measured between on the ladder (``OUT/<rung>/seed<seed>/``, the
layout of scripts/sweep.py, so pointing --out at a finished ladder sweep of the same budget
reuses its runs: a completed run is skipped). Rerunning resumes; ``--no-ladder`` runs only the
top and its variants. Jobs run as in scripts/sweep.py (ladder/train/jobs.py), each with
``--threads`` compute threads (default: the available cores / jobs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # without `pip install -e .`

from ladder.train.loo import run_loo  # noqa: E402


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
    try:
        return run_loo(seeds=[int(s) for s in args.seeds.split(",")], top=args.top,
                       with_ladder=not args.no_ladder,
                       only=args.only.split(",") if args.only else None, out=args.out,
                       at_once=args.jobs, threads=args.threads, config_dirs=args.config_dir,
                       overrides=args.overrides, list_only=args.list)
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
