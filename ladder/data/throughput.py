"""How fast each input path feeds the training device, without a model.

    python -m ladder.data.throughput preset=imagenette_gpu data.root=/data/imagenette-64 \\
        --store /tmp/store --prepare --json store_vs_folder.json

``--prepare`` first builds the pixel store ``--store`` from the configured data (python -m
ladder.data.prepare's rule, every core; its images/s and images per CPU-second are recorded).
Then, per path, the loaders are built as a run builds them (on ``trainer.device``, the run's
per-device batch ``trainer.batch_size``, ``+rung``'s recipe) and ``--batches`` training
batches are timed after ``--warmup`` (the device synchronized before the clock stops):

* ``store_device``: the prepared store on the device, augmented there;
* ``store_host``: the same store memory-mapped in host memory, each batch gathered into pinned
  memory and copied asynchronously, then augmented on the device;
* ``folder_device``: the image folder through its tensor cache (decoded on first use);
* ``folder_loader``: the image folder through timm's per-image pipeline in DataLoader workers
  (``data.num_workers``; unset: each rank's share of the cores), copied to the device.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

PATHS = ("store_device", "store_host", "folder_device", "folder_loader")


def _variant(data, path: str, store: Path | None):
    if path.startswith("store"):
        return replace(data, store=str(store), pipeline="auto",
                       store_placement=path.split("_")[1])
    return replace(data, store=None, pipeline=path.split("_")[1])


def rate(data, recipe, batch: int, device: torch.device, batches: int, warmup: int) -> dict:
    """Images per second of the training loader of ``data`` (and its pipeline's name)."""
    from ladder.data.loaders import build_loaders

    loaders = build_loaders(data, recipe, batch, 1, seed=0, device=device,
                            pin_memory=device.type == "cuda", log=lambda m: None)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    epoch, it = 0, None

    def batch_on_device():
        nonlocal epoch, it
        while True:
            if it is None:
                loaders.train_sampler.set_epoch(epoch)
                it = iter(loaders.train)
            try:
                x, y = next(it)
                return x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            except StopIteration:
                epoch, it = epoch + 1, None

    for _ in range(warmup):
        batch_on_device()
    sync()
    start = time.perf_counter()
    for _ in range(batches):
        batch_on_device()
    sync()
    seconds = time.perf_counter() - start
    return {"img_per_s": batches * batch / seconds, "pipeline": loaders.pipeline,
            "workers": loaders.num_workers}


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from ladder.data.common import DataError
    from ladder.data.layout import find_source, resolve_root
    from ladder.data.prepare import build_store, prepared_rules, store_lock
    from ladder.ladders.compose import compose_config
    from ladder.utils.runtime import available_cores, device_name, pick_device

    p = argparse.ArgumentParser(prog="python -m ladder.data.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="config overrides (preset=..., data.root=...)")
    p.add_argument("--rung", default="micro", help="whose recipe augments (default: micro)")
    p.add_argument("--store", type=Path, help="a prepared store (the store_* paths need one)")
    p.add_argument("--prepare", action="store_true", help="build --store first, timed")
    p.add_argument("--paths", default=",".join(PATHS))
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    cfg = OmegaConf.to_object(compose_config(args.rung, args.overrides))
    data, recipe = cfg.data, cfg.recipe
    device = pick_device(cfg.trainer.device, 0)
    out = {"device": device_name(device), "batch": cfg.trainer.batch_size,
           "image_size": data.image_size, "cpu_cores": available_cores()}
    try:
        if args.prepare:
            source = find_source(resolve_root(data))
            stats: dict = {}
            with store_lock(args.store, wait=False):
                if (args.store / "manifest.json").exists():
                    raise DataError(f"{args.store} exists; --prepare builds a new store")
                build_store(args.store, source, prepared_rules(data.store_size),
                            available_cores(), bad_images=data.bad_images, stats=stats)
            out.update(prepare_images=stats["images"], prepare_workers=stats["workers"],
                       prepare_img_per_s=stats["images"] / stats["seconds"],
                       prepare_img_per_cpu_s=stats["images"] / stats["cpu_seconds"])
        for path in args.paths.split(","):
            if path.startswith("store") and args.store is None:
                raise DataError(f"--paths {path} needs --store")
            got = rate(_variant(data, path, args.store), recipe, cfg.trainer.batch_size,
                       device, args.batches, args.warmup)
            out[f"{path}_img_per_s"] = got["img_per_s"]
            if path == "folder_loader":
                out["folder_loader_workers"] = got["workers"]
            print(f"[ladder] {path:<14} {got['img_per_s']:>10.0f} img/s", flush=True)
    except DataError as err:
        print(f"[ladder] error: {err}")
        return 2
    finally:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
