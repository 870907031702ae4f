"""Leave-one-out from the top: each architectural change of the ladder undone alone at ConvNeXt-T,
as one resumable sweep of train.py jobs (the changes are generated from the rung files by
ladder/variants.py, not listed by hand).

    python scripts/loo.py --list                       # the changes, their overrides, the refused
    python scripts/loo.py --seeds 0,1 --jobs 2 --out multirun/loo -- preset=demo logger=none
    python scripts/roadmap.py multirun/loo --view loo  # each change at the top beside the ladder

Jobs, per seed: the top, every change the schema accepts (``OUT/undo_<step>/seed<seed>/``), and
the ladder rungs each change is measured between on the ladder (``OUT/<rung>/seed<seed>/``, the
layout of scripts/sweep.py, so pointing --out at a finished ladder sweep of the same budget
reuses its runs: a completed run is skipped). Rerunning resumes; ``--no-ladder`` runs only the
top and its variants. Each job runs with ``--threads`` compute threads (default: cores / jobs).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ladder.variants import leave_one_out  # noqa: E402


def jobs_for(seeds: list[int], top: str | None, with_ladder: bool,
             only: list[str] | None = None) -> list[tuple[str, str, list[str], int]]:
    """(run name, rung, overrides, seed) for every job, seed by seed: top, variants, ladder."""
    undos, _ = leave_one_out(top)
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


def print_list(top: str | None) -> None:
    undos, skipped = leave_one_out(top)
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
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --)")
    args = parser.parse_args(argv)
    if args.list:
        print_list(args.top)
        return 0

    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = jobs_for(seeds, args.top, not args.no_ladder,
                    args.only.split(",") if args.only else None)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"[loo] {len(jobs)} jobs ({len(jobs) // len(seeds)} per seed x {len(seeds)} seeds), "
          f"{args.jobs} at once, {threads} threads each, into {out}", flush=True)

    def run(job: tuple[str, str, list[str], int]) -> tuple[str, int, int]:
        name, rung, overrides, seed = job
        run_dir = out / name / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        tags = "[loo]" if name == rung else f"[loo,'{name}']"
        cmd = [sys.executable, str(REPO / "train.py"), f"+rung={rung}", *overrides,
               f"seed={seed}", f"hydra.run.dir={run_dir}", f"logger.group={out.name}",
               f"logger.tags={tags}", "trainer.progress=false", *args.overrides]
        t0 = time.time()
        with open(run_dir / "train.log", "a") as log:
            code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=REPO).returncode
        tail = (run_dir / "train.log").read_text().strip().splitlines()[-1:]
        print(f"[loo] {name} seed {seed}: exit {code} in {time.time() - t0:.0f}s | "
              f"{tail[0] if tail else ''}", flush=True)
        return name, seed, code

    t0 = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, jobs))
    failed = [(n, s, c) for n, s, c in results if c != 0]
    print(f"[loo] done in {time.time() - t0:.0f}s: {len(jobs) - len(failed)} ok, "
          f"{len(failed)} failed" + "".join(f"\n[loo]   failed: {n} seed {s} (exit {c})"
                                           for n, s, c in failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
