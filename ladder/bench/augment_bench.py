"""img/s of the device path's augmentation stage, before and after it was batched, in one run
(scripts/augment_benchmark.py).

"before" is the kornia implementation the device path used until the batched one replaced it
(copied below, unchanged but for its name: kornia's RandomResizedCrop, which crops and resizes
one sample at a time, kornia's RandAugment applied per group of 16 rows with a host sync per op,
kornia's RandomErasing); "after" is :class:`ladder.data.augment.BatchAugment`. Both augment the
same uint8 batch of random pixels, taking turns over ``repeats`` rounds (medians), for the
modern recipe with RandAugment on (rand-m9-mstd0.5-inc1, erasing 0.25, bicubic, scale 0.08..1)
and for the presets' crop + flip only. On a shared CPU the ``cpu`` clock (the process's CPU
time, one thread) is the steadier clock; only the ratios mean anything there. ``dense`` times,
on the CPU, the every-op-on-every-sample path that other devices take.

kornia is needed only here, as the "before" side: ``pip install -e ".[bench]"``.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch

from ladder.data.augment import IMAGENET_MEAN, IMAGENET_STD, BatchAugment
from ladder.ladders.schema import RecipeConfig
from ladder.utils.runtime import device_name

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


def require_kornia():
    """The kornia module, or SystemExit with the one line that says how to install it."""
    try:
        import kornia
    except ImportError:
        raise SystemExit('augment_benchmark: kornia, the "before" side of this benchmark, is not '
                         'installed; install it with pip install -e ".[bench]".') from None
    return kornia


def run(*, batch: int = 256, sizes: Sequence[int] = (64, 224),
        recipes: Sequence[str] = ("randaugment", "crop_flip"), steps: int = 2, warmup: int = 1,
        repeats: int = 5, clock: str = "wall", device: str = "auto", dense: bool = False,
        json_path: Path | str | None = None) -> list[dict]:
    """One row per (recipe, size): img/s before and after, and the speedup; printed, and
    written to ``json_path`` (with the machine) when given."""
    kornia = require_kornia()
    unknown = [name for name in recipes if name not in RECIPES]
    if unknown:
        raise SystemExit(f"augment_benchmark: unknown recipe(s) {', '.join(unknown)}; the "
                         f"recipes are {', '.join(RECIPES)}.")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if device == "auto" else device)
    rows = []
    for name in recipes:
        recipe = RecipeConfig(**RECIPES[name])
        for size in sizes:
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, 256, (batch, 3, size, size), generator=g,
                              dtype=torch.uint8).to(device)
            before = KorniaBatchAugment(size, recipe).to(device)
            after = BatchAugment(size, recipe, dense=True if dense else None).to(device)
            row = {"recipe": name, **RECIPES[name], "size": size, "batch": batch,
                   "after_path": "dense" if dense or device.type != "cpu" else "cpu subsets",
                   **time_pair(before, after, x, steps, warmup, repeats, clock)}
            rows.append(row)
            print(f"{name:<12} {size:>4} px  before {row['before_img_per_s']:>9.1f} img/s  "
                  f"after {row['after_img_per_s']:>9.1f} img/s  x{row['speedup']:.2f}", flush=True)
    if json_path:
        out = {"device": device_name(device), "torch": torch.__version__,
               "kornia": kornia.__version__, "threads": torch.get_num_threads(),
               "clock": clock, "steps": steps, "repeats": repeats, "rows": rows}
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=2) + "\n")
    return rows
