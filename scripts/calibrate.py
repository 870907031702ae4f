"""Calibrate each recipe's proxy settings on held-out training images, resumably.

    python scripts/calibrate.py --jobs 2 --threads 1 --out results/calibration-cpu/runs \
        -- preset=imagenette_cpu
    python scripts/calibrate.py --report results/calibration-cpu/runs --out results/calibration-cpu
    python scripts/calibrate.py --confirm modern --jobs 2 --out results/calibration-cpu/runs \
        -- preset=imagenette_cpu

The grid (``--grid``, default conf/calibration/proxy.yaml) names each recipe's reference end
and the settings tried one at a time; its header has the rule that makes the choice. The first
command runs every grid point (``OUT/<recipe>-<setting>/seed<k>/``; a rerun skips finished
runs), ``--report`` writes calibration.md and calibration.csv, and ``--confirm RECIPE`` runs
the values the report adopted for that recipe together, when it adopted more than one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ladder.ladders.calibration import load_grid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", default="proxy", help="conf/calibration/<name>.yaml or a path")
    p.add_argument("--recipes", default=None, help="comma-separated recipes (default: all)")
    p.add_argument("--jobs", type=int, default=1, help="jobs at once")
    p.add_argument("--threads", type=int, default=None, help="compute threads per job")
    p.add_argument("--out", default="multirun/calibration", help="the grid's run folder")
    p.add_argument("--report", metavar="RUNS", help="write the calibration report of RUNS")
    p.add_argument("--confirm", metavar="RECIPE", help="run RECIPE's adopted values together")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every job (after --)")
    a = p.parse_args(argv)
    grid = load_grid(a.grid)
    if a.report:
        from ladder.report.calibration import write_calibration
        from ladder.report.load import load_results

        for path in write_calibration(load_results(a.report), Path(a.out), grid):
            print(f"wrote {path}")
        return 0
    from ladder.train import calibrate

    if a.confirm:
        from ladder.report.calibration import choose, points
        from ladder.report.load import load_results

        pts = points(load_results(a.out), grid, a.confirm)
        if not pts:
            print(f"calibrate: error: no finished {a.confirm}-base run in {a.out}", file=sys.stderr)
            return 2
        adopted = choose(pts, grid, a.confirm)["adopted"]
        if len(adopted) < 2:
            print(f"calibrate: {a.confirm} adopted {len(adopted)} value(s): nothing to confirm")
            return 0
        jobs = calibrate.confirm_jobs(grid, a.confirm, adopted)
    else:
        jobs = calibrate.phase_jobs(grid, a.recipes.split(",") if a.recipes else None)
    return calibrate.run_grid(jobs, Path(a.out), a.jobs, a.threads, a.overrides)


if __name__ == "__main__":
    sys.exit(main())
