"""img/s of the device path's augmentation stage, before (kornia) and after it was batched, in
one run (ladder/bench/augment_bench.py says what each side is).

    python scripts/augment_benchmark.py                              # batch 256, 64 and 224 px
    OMP_NUM_THREADS=1 python scripts/augment_benchmark.py --clock cpu --json out.json
    python scripts/augment_benchmark.py --device cuda --sizes 224

kornia is needed only here: pip install -e ".[bench]".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # without `pip install -e .`

from ladder.bench import augment_bench  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python scripts/augment_benchmark.py",
                                description=augment_bench.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--sizes", default="64,224", help="comma-separated image sizes (stored = out)")
    p.add_argument("--recipes", default="randaugment,crop_flip",
                   help=",".join(augment_bench.RECIPES))
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--device", default="auto")
    p.add_argument("--dense", action="store_true",
                   help="time the batched path off the CPU takes (every op on every sample) "
                        "even on the CPU")
    p.add_argument("--json", help="also write the rows (and the machine) to this file")
    args = p.parse_args(argv)
    return augment_bench.run(batch=args.batch, sizes=[int(s) for s in args.sizes.split(",")],
                             recipes=args.recipes.split(","), steps=args.steps,
                             warmup=args.warmup, repeats=args.repeats, clock=args.clock,
                             device=args.device, dense=args.dense, json_path=args.json)


if __name__ == "__main__":
    main()
