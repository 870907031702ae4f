"""img/s of the device path's augmentation stage, before and after it was batched, in one run.

    python scripts/augment_benchmark.py                              # batch 256, 64 and 224 px
    OMP_NUM_THREADS=1 python scripts/augment_benchmark.py --clock cpu --json out.json
    python scripts/augment_benchmark.py --device cuda --sizes 224

"before" is the kornia implementation the device path used until the batched one replaced it
(copied below, unchanged but for its name: kornia's RandomResizedCrop, which crops and resizes
one sample at a time, kornia's RandAugment applied per group of 16 rows with a host sync per op,
kornia's RandomErasing); "after" is :class:`ladder.data.augment.BatchAugment`. Both augment the same
uint8 batch of random pixels, taking turns over ``--repeats`` rounds (medians), for the modern
recipe with RandAugment on (rand-m9-mstd0.5-inc1, erasing 0.25, bicubic, scale 0.08..1) and for
the presets' crop + flip only. On a shared CPU ``--clock cpu`` (the process's CPU time, one
thread) is the steadier clock; only the ratios mean anything there. ``--dense`` times, on the
CPU, the every-op-on-every-sample path that other devices take.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ladder.data.augment import IMAGENET_MEAN, IMAGENET_STD, BatchAugment  # noqa: E402
from ladder.utils.runtime import device_name  # noqa: E402
from ladder.ladders.schema import RecipeConfig  # noqa: E402

RECIPES = {
    "randaugment": dict(randaugment="rand-m9-mstd0.5-inc1", random_erasing=0.25,
                        interpolation="bicubic", crop_scale_min=0.08),
    "crop_flip": dict(randaugment=None, random_erasing=0.0, interpolation="bicubic",
                      crop_scale_min=0.35),
}


class KorniaBatchAugment(torch.nn.Module):
    """The previous device-path augmentation (kornia), kept here only to be measured."""

    def __init__(self, size: int, recipe: RecipeConfig, group: int = 16):
        super().__init__()
        import kornia.augmentation as K
        from kornia.augmentation import auto

        resample = "BICUBIC" if recipe.interpolation == "bicubic" else "BILINEAR"
        self.crop = K.RandomResizedCrop((size, size), scale=(recipe.crop_scale_min, 1.0),
                                        ratio=(3 / 4, 4 / 3), resample=resample)
        self.flip = K.RandomHorizontalFlip()
        self.randaugment = None
        if recipe.randaugment:
            self.ops, m = _parse_randaugment(recipe.randaugment)
            self.randaugment = auto.RandAugment(n=1, m=min(29, round(m * 3)))
        self.group = group
        self.erasing = (K.RandomErasing(p=recipe.random_erasing, value=0.0)
                        if recipe.random_erasing > 0 else None)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flip(self.crop(x.float().div_(255)))
        if self.randaugment is not None:
            x = torch.cat([self._randaugment(chunk) for chunk in x.split(self.group)])
        x = (x - self.mean) / self.std
        if self.erasing is not None:
            x = self.erasing(x)
        return x

    def _randaugment(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.ops):
            rows = torch.rand(len(x), device=x.device) < 0.5
            if rows.any():
                x = x.clone()
                x[rows] = self.randaugment(x[rows]).clamp_(0, 1)
        return x


def _parse_randaugment(spec: str) -> tuple[int, float]:
    n, m = 2, 9.0
    for part in spec.split("-")[1:]:
        if part.startswith("mstd"):
            continue
        if part.startswith("m"):
            m = float(part[1:])
        elif part.startswith("n"):
            n = int(part[1:])
    return n, m


def time_pair(before, after, x: torch.Tensor, steps: int, warmup: int, repeats: int,
              clock: str) -> dict:
    """Median seconds per batch of each, taking turns (the order alternating each round)."""
    timer = time.process_time if clock == "cpu" else time.perf_counter
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)

    def run(fn, n):
        sync()
        start = timer()
        for i in range(n):
            torch.manual_seed(i)
            fn(x)
        sync()
        return (timer() - start) / n

    run(before, warmup)
    run(after, warmup)
    times = {"before": [], "after": []}
    for r in range(repeats):
        pair = [("before", before), ("after", after)]
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):
            times[name].append(run(fn, steps))
    batch = len(x)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"before_img_per_s": batch / med["before"], "after_img_per_s": batch / med["after"],
            "speedup": med["before"] / med["after"], "before_s": times["before"],
            "after_s": times["after"]}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python scripts/augment_benchmark.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--sizes", default="64,224", help="comma-separated image sizes (stored = out)")
    p.add_argument("--recipes", default="randaugment,crop_flip", help=",".join(RECIPES))
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
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    rows = []
    for name in args.recipes.split(","):
        recipe = RecipeConfig(**RECIPES[name])
        for size in (int(s) for s in args.sizes.split(",")):
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, 256, (args.batch, 3, size, size), generator=g,
                              dtype=torch.uint8).to(device)
            before = KorniaBatchAugment(size, recipe).to(device)
            after = BatchAugment(size, recipe, dense=True if args.dense else None).to(device)
            row = {"recipe": name, **RECIPES[name], "size": size, "batch": args.batch,
                   "after_path": "dense" if args.dense or device.type != "cpu" else "cpu subsets",
                   **time_pair(before, after, x, args.steps, args.warmup, args.repeats,
                               args.clock)}
            rows.append(row)
            print(f"{name:<12} {size:>4} px  before {row['before_img_per_s']:>9.1f} img/s  "
                  f"after {row['after_img_per_s']:>9.1f} img/s  x{row['speedup']:.2f}", flush=True)
    if args.json:
        import kornia

        out = {"device": device_name(device), "torch": torch.__version__,
               "kornia": kornia.__version__, "threads": torch.get_num_threads(),
               "clock": args.clock, "steps": args.steps, "repeats": args.repeats, "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
