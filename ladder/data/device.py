"""The device path: uint8 images decoded once into a pixel store (ladder/data/store.py), held on
the training device (or memory-mapped beside it) and augmented in whole batches there.

Three sources feed it: a prepared store (``data.store``, built once by ``python -m
ladder.data.prepare``); the tensor cache, a store per split built on first use from an image
folder (at ``data.image_size``, with the recipe's interpolation; the training copy is the short
side resized and center-cropped, the evaluation copy is what timm's eval transform makes:
resize to ``image_size / eval_crop_ratio``, center crop); and ``data=synthetic``, uint8 noise
made once on the device from its split's seed (labels as on the loader path). Augmentation:
:class:`ladder.data.augment.BatchAugment` (random-resized crop, flip, RandAugment, random
erasing as batched tensor ops with no host syncs; Mixup/CutMix stay timm's, in the trainer);
synthetic batches are only normalized.

Determinism: the epoch order is :class:`ladder.data.sampling.EpochSampler`'s (a function of
seed and epoch, sharded by rank); the random draws of a global batch (all ranks' rows of one
step) are made whole from the global RNG forked and seeded by (seed, epoch, batch position),
and each rank augments its own rows with their draws, so every sample's pixels are a function
of (seed, epoch, global batch), the same under torchrun as in one process with that global
batch; a resumed run is bit-identical on the CPU, and the training process's own RNG (drop
path, Mixup) is not touched.

Where it differs from timm's per-image pipeline: crops are taken from the stored square (short
side resized, center cropped), not from the full-resolution source; the interpolation of the
crop and of RandAugment's geometric ops is ``grid_sample``'s (ladder/data/augment.py lists the
rest). Evaluation images whose stored crop or size is not the run's (a prepared store at another
``image_size``, or held-out training images) are center-cropped and resized on the device.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from ladder.data.augment import BatchAugment
from ladder.data.common import STORE_FORMAT, DataError, default_cache_dir
from ladder.data.layout import Source, find_source, resolve_root
from ladder.data.prepare import Rule, _fingerprint, build_store, store_lock, versions
from ladder.data.sampling import Loaders, make_sampler, shard
from ladder.data.split import holdout_indices
from ladder.data.store import (HostImages, Store, StoreSplit, check_store, placement, store_dir,
                               where_text)
from ladder.ladders.schema import DataConfig, RecipeConfig
from ladder.utils.runtime import available_cores

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- the tensor cache
def cache_rules(size: int, recipe: RecipeConfig) -> tuple[Rule, Rule]:
    """(training, evaluation) rules of the tensor cache: timm's eval transform at crop 1 and at
    the recipe's crop, with the recipe's interpolation, every JPEG decoded at full size."""
    return (Rule(size, recipe.interpolation, 1.0, 0.0),
            Rule(size, recipe.interpolation, recipe.eval_crop_ratio, 0.0))


def cached_split(root: Path, classes: list[str], samples: list[tuple[str, int]], mode: str,
                 rule: Rule, bad_images: str = "fail", cache_dir: Path | None = None,
                 log=print) -> StoreSplit:
    """The ``mode`` split of the tensor cache for these files (built once, under a lock that
    other ranks wait on; a damaged cache is rebuilt, never trusted)."""
    cache_dir = cache_dir or default_cache_dir() / "tensors"
    key = hashlib.sha1(json.dumps([STORE_FORMAT, rule.describe(), versions(), bad_images,
                                   _fingerprint(samples, root)]).encode()).hexdigest()[:16]
    dest = cache_dir / f"{mode}-{rule.size}px-{key}"
    with store_lock(dest, wait=True):
        if (dest / "manifest.json").exists():
            try:
                return Store(dest).split(mode)
            except (OSError, ValueError, KeyError) as err:
                log(f"[ladder] tensor cache {dest} is unreadable ({type(err).__name__}); "
                    f"rebuilding")
                shutil.rmtree(dest)
        build_store(dest, Source(Path(root), "files", list(classes), {mode: samples}),
                    {mode: rule}, workers=available_cores(), bad_images=bad_images,
                    threads=True, log=log)
    return Store(dest).split(mode)


# ----------------------------------------------------------------------------- loaders
def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float().div_(255) - mean) / std


class EvalView:
    """Center crop ``fraction`` of a stored square and resize it to ``size`` (on the device)."""

    def __init__(self, fraction: float, size: int):
        self.fraction, self.size = fraction, size

    @classmethod
    def between(cls, rule: dict, crop: float, size: int, what: str) -> "EvalView | None":
        """What turns images stored by ``rule`` into the run's evaluation images (center crop
        ``crop`` of the short side at ``size`` px); None when they are that already."""
        if abs(rule["crop_pct"] - crop) < 1e-9 and rule["size"] == size:
            return None
        if crop > rule["crop_pct"] + 1e-9:
            raise DataError(f"the store's {what} images keep {rule['crop_pct']:g} of each "
                            f"image's short side and recipe.eval_crop_ratio={crop:g} needs "
                            f"more: prepare the store again or evaluate at a smaller crop")
        return cls(crop / rule["crop_pct"], size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[-1]
        k = max(1, int(round(s * self.fraction)))
        top = int(round((s - k) / 2.0))
        x = x[..., top:top + k, top:top + k]
        if k != self.size:
            x = F.interpolate(x.float(), size=(self.size, self.size), mode="bilinear",
                              antialias=True, align_corners=False).clamp_(0, 255).round_()
        return x


def _take(images, index: torch.Tensor) -> torch.Tensor:
    return images[index] if isinstance(images, torch.Tensor) else images.take(index)


class DeviceTrainLoader:
    """Batches of (augmented images, labels) on the device, in :class:`EpochSampler` order.

    ``images``: a uint8 tensor on the device, or :class:`ladder.data.store.HostImages`
    (memory-mapped, each batch copied over). ``len`` and iteration follow the sampler
    (``set_epoch(epoch, start)`` skips seen samples). Batch ``b`` of every rank is cut from the
    same global batch (``batch_size x world_size`` consecutive samples of the epoch's global
    order, rank r taking rows r, r + W, ...). The random draws of that global batch are made
    whole from the global RNG, forked and seeded by (seed, epoch, b); each rank augments only
    its own rows, with their draws. ``augment=None``: the images are only normalized.
    """

    def __init__(self, images, labels: torch.Tensor, sampler, batch_size: int,
                 augment: BatchAugment | None, seed: int):
        self.images, self.labels, self.sampler = images, labels, sampler
        self.batch_size, self.augment, self.seed = batch_size, augment, seed
        self.device = labels.device
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        world, rank, epoch = self.sampler.world_size, self.sampler.rank, self.sampler.epoch
        order = self.sampler.global_order()
        on_device = order.to(self.device)
        if isinstance(self.images, torch.Tensor):
            order = on_device
        first = self.sampler.start // self.batch_size
        step = self.batch_size * world
        devices = [self.device] if self.device.type == "cuda" else []
        for b in range(first, first + len(self)):
            rows = slice(b * step + rank, (b + 1) * step, world)
            x, y = _take(self.images, order[rows]), self.labels[on_device[rows]]
            if self.augment is None:
                yield normalize(x, self.mean, self.std), y
                continue
            seed = (self.seed * 1_000_003 + epoch) * 1009 * 100_003 + b
            with torch.random.fork_rng(devices=devices, device_type=self.device.type):
                torch.manual_seed(seed)
                x = self.augment(x, rank, world)
            yield x, y


class DeviceEvalLoader:
    """Evaluation images in order, normalized on the device (``view``: an :class:`EvalView`
    applied first)."""

    def __init__(self, images, labels: torch.Tensor, batch_size: int, view=None):
        self.images, self.labels, self.batch_size, self.view = images, labels, batch_size, view
        self.mean = torch.tensor(IMAGENET_MEAN, device=labels.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=labels.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.labels), self.batch_size):
            index = torch.arange(start, min(start + self.batch_size, len(self.labels)))
            x = _take(self.images, index.to(self.labels.device)
                      if isinstance(self.images, torch.Tensor) else index)
            if self.view is not None:
                x = self.view(x)
            yield normalize(x, self.mean, self.std), self.labels[start:start + self.batch_size]


# ----------------------------------------------------------------------------- the three sources
def folder_loaders(train, val, holdout, split, source: str, data: DataConfig,
                   recipe: RecipeConfig, batch_size: int, accum_steps: int, seed: int,
                   rank: int, world: int, device: torch.device, log) -> Loaders:
    """The device path of an image folder (:class:`ladder.data.loaders.ImageFolderDataset`
    views of it), from the tensor cache."""
    root, size = Path(source), data.image_size
    train_rule, eval_rule = cache_rules(size, recipe)

    def cached(ds, mode, rule):
        part = cached_split(root, ds.classes, ds.samples, mode, rule, data.bad_images, log=log)
        return part.resident(None, device), part.labels.to(device)

    xt, yt = cached(train, "train", train_rule)
    sampler = make_sampler(len(yt), source, batch_size, accum_steps, seed, rank, world)
    xv, yv = cached(val, "val", eval_rule)
    lo, hi = shard(len(yv), rank, world)
    hold_loader = None
    if holdout is not None:
        xh, yh = cached(holdout, "holdout", eval_rule)
        h_lo, h_hi = shard(len(yh), rank, world)
        hold_loader = DeviceEvalLoader(xh[h_lo:h_hi], yh[h_lo:h_hi], batch_size)
    augment = BatchAugment(size, recipe).to(device)
    return Loaders(DeviceTrainLoader(xt, yt, sampler, batch_size, augment, seed),
                   DeviceEvalLoader(xv[lo:hi], yv[lo:hi], batch_size), sampler, source,
                   len(yt), len(yv), "device", tuple(train.classes), hold_loader, split)


def store_loaders(data: DataConfig, recipe: RecipeConfig, batch_size: int, accum_steps: int,
                  seed: int, rank: int, world: int, device: torch.device, log) -> Loaders:
    """The device path from a prepared store, checked against the config and placed on the
    device or in host memory (the check and its arithmetic logged)."""
    root = resolve_root(data) if data.root or data.name in ("demo", "imagenette") else None
    path = store_dir(data, root)
    store = Store(path)
    source = find_source(root) if root is not None else None
    if source is None:
        log(f"[ladder] data.root is unset: the pixel store {path} is used without checking "
            f"its source")
    check_store(store, data, source)
    train, val = store.split("train"), store.split("val")
    kept, held, split = None, None, None
    if data.holdout:
        k, h = holdout_indices(train.labels.tolist(), data.holdout, data.holdout_seed,
                               store.classes)
        kept, held = torch.tensor(k, dtype=torch.long), torch.tensor(h, dtype=torch.long)
        split = {"fraction": data.holdout, "seed": data.holdout_seed,
                 "train_images": len(k), "holdout_images": len(h)}
    n_train = len(train) if kept is None else len(kept)
    sampler = make_sampler(n_train, str(path), batch_size, accum_steps, seed, rank, world)
    lo, hi = shard(len(val), rank, world)
    parts = {"train": n_train, "val": hi - lo}
    if held is not None:
        h_lo, h_hi = shard(len(held), rank, world)
        held = held[h_lo:h_hi]
        parts["held-out"] = len(held)
    on_device, check = placement(data, parts, train.nbytes(1), store.size, device)
    log(f"[ladder] pixel store {path}: {check}: {where_text(on_device, device)}")

    def part(split_: StoreSplit, rows):
        images = (split_.resident(rows, device) if on_device
                  else HostImages(split_, rows, device))
        labels = split_.labels if rows is None else split_.labels[rows]
        return images, labels.to(device)

    xt, yt = part(train, kept)
    xv, yv = part(val, torch.arange(lo, hi))
    crop, size = recipe.eval_crop_ratio, data.image_size
    hold_loader = None
    if held is not None:
        xh, yh = part(train, held)
        hold_loader = DeviceEvalLoader(xh, yh, batch_size,
                                       EvalView.between(train.rule, crop, size, "training"))
    augment = BatchAugment(size, recipe).to(device)
    rule = train.rule
    facts = {"size": store.size, "interpolation": rule["interpolation"],
             "draft_gap": rule["draft_gap"], "eval_crop": val.rule["crop_pct"]}
    return Loaders(DeviceTrainLoader(xt, yt, sampler, batch_size, augment, seed),
                   DeviceEvalLoader(xv, yv, batch_size,
                                    EvalView.between(val.rule, crop, size, "validation")),
                   sampler, str(path), n_train, len(val), "device", tuple(store.classes),
                   hold_loader, split, facts)


def synthetic_images(n: int, size: int, num_classes: int, seed: int, device: torch.device):
    """(uint8 noise [n, 3, size, size] made on ``device`` by a generator seeded with ``seed``,
    labels [n] as the loader path's :class:`ladder.data.loaders.SyntheticDataset` draws them)."""
    g = torch.Generator(device=device).manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, device=device,
                           dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(seed))
    return images, labels.to(device)


def synthetic_loaders(data: DataConfig, batch_size: int, accum_steps: int, seed: int,
                      rank: int, world: int, device: torch.device) -> Loaders:
    """``data=synthetic`` on the device: the sets made there once (train: seed 0, val: seed
    1), batches gathered and normalized there; image ``i`` of a set is the same every epoch."""
    size, classes = data.image_size, data.num_classes
    xt, yt = synthetic_images(data.synthetic_train_size, size, classes, 0, device)
    xv, yv = synthetic_images(data.synthetic_val_size, size, classes, 1, device)
    source = f"synthetic uint8 noise made on the {device.type}"
    sampler = make_sampler(len(yt), source, batch_size, accum_steps, seed, rank, world)
    lo, hi = shard(len(yv), rank, world)
    return Loaders(DeviceTrainLoader(xt, yt, sampler, batch_size, None, seed),
                   DeviceEvalLoader(xv[lo:hi], yv[lo:hi], batch_size), sampler, source,
                   len(yt), len(yv), "device", tuple(f"class{i}" for i in range(classes)))
