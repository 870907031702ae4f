"""Datasets and loaders: demo (generated), image folders, Imagenette, synthetic.

Transforms come from timm's ``create_transform`` (RandAugment, color jitter, random erasing,
resize/center-crop eval), configured by the recipe. Nothing here imports Hydra or W&B.
"""
from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

# DataError is defined in ladder.data.common; ladder.data.loaders.DataError is the same class.
from ladder.data.common import DataError, default_cache_dir
from ladder.data.imagenette import imagenette_root
from ladder.data.split import split_holdout
from ladder.ladders.schema import DataConfig, RecipeConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# ----------------------------------------------------------------------------- demo data
DEMO_VERSION = "demo-v2"
DEMO_STORE_SIZE = 64  # stored resolution; transforms resize to data.image_size
DEMO_CLASSES = ("circle", "square", "triangle", "ring", "cross", "hstripes", "vstripes",
                "checker", "diamond", "dots")


def _demo_image(label: int, rng: np.random.Generator, size: int = DEMO_STORE_SIZE) -> Image.Image:
    """One image of class ``label``: a shape or texture of random colour, scale and position on
    a noisy random-colour background, blurred and noised so the task is learnable but not
    solved at once (shape, not colour, carries the class)."""
    s = size
    bg = rng.integers(0, 256, 3)
    fg = rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg.astype(int)).sum() < 200:  # keep the shape visible
        fg = rng.integers(0, 256, 3)
    # low-frequency background: a coarse random grid upsampled
    coarse = rng.normal(0, 15, (4, 4, 3)) + bg
    img = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize((s, s), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.25, 0.42) * s
    cx, cy = rng.uniform(r, s - r, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    col = tuple(int(c) for c in fg)
    name = DEMO_CLASSES[label]
    if name == "circle":
        draw.ellipse(box, fill=col)
    elif name == "square":
        draw.rectangle(box, fill=col)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
    elif name == "ring":
        draw.ellipse(box, outline=col, width=max(2, int(r / 3)))
    elif name == "cross":
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=col)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=col)
    elif name == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=col)
    elif name == "dots":
        for _ in range(int(rng.integers(4, 8))):
            x, y = rng.uniform(0, s, 2)
            d = rng.uniform(0.05, 0.09) * s
            draw.ellipse([x - d, y - d, x + d, y + d], fill=col)
    else:  # textures over a patch: stripes and checkerboard
        period = int(rng.integers(4, 9))
        patch = np.array(img)
        yy, xx = np.mgrid[0:s, 0:s]
        if name == "hstripes":
            mask = (yy // period) % 2 == 0
        elif name == "vstripes":
            mask = (xx // period) % 2 == 0
        else:
            mask = ((yy // period) + (xx // period)) % 2 == 0
        inside = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)
        patch[mask & inside] = fg
        img = Image.fromarray(patch)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.0, 0.8))))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 10, (s, s, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def ensure_demo_dataset(cfg: DataConfig) -> Path:
    """Generate the demo dataset once (deterministic) and return its ImageNet-layout root."""
    base = Path(cfg.root) if cfg.root else default_cache_dir()
    root = base / f"{DEMO_VERSION}-{cfg.train_per_class}x{cfg.val_per_class}"
    done = root / ".complete"
    if done.exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    print(f"[ladder] generating the demo dataset (10 classes, {cfg.train_per_class} train + "
          f"{cfg.val_per_class} val images per class) in {root} ...", flush=True)
    for split, per_class, seed in (("train", cfg.train_per_class, 0), ("val", cfg.val_per_class, 1)):
        for label, name in enumerate(DEMO_CLASSES):
            out = tmp / split / f"{label:02d}_{name}"
            out.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, label])
            for i in range(per_class):
                _demo_image(label, rng).save(out / f"{i:05d}.jpg", quality=90)
    (tmp / ".complete").write_text("ok\n")
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return root


# ----------------------------------------------------------------------------- folders
def check_image_folder(root: Path) -> list[str]:
    """Fail early, naming the path, unless ``root`` has train/<class>/ and val/<class>/ with
    images and the same classes in both. Returns the class names."""
    layout = "expected layout: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg"
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist ({layout})")
    classes = None
    for split in ("train", "val"):
        d = root / split
        if not d.is_dir():
            raise DataError(f"data.root {root} has no '{split}/' folder ({layout})")
        found = sorted(p.name for p in d.iterdir() if p.is_dir())
        if not found:
            raise DataError(f"{d} has no class folders ({layout})")
        for c in found:
            if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in (d / c).iterdir()):
                raise DataError(f"class folder {d / c} is empty: it has no image files "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
        if classes is not None and found != classes:
            only_train = sorted(set(classes) - set(found))
            only_val = sorted(set(found) - set(classes))
            raise DataError(f"train/ and val/ under {root} have different classes "
                            f"(only in train: {only_train[:5]}, only in val: {only_val[:5]})")
        classes = found
    return classes


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` images with integer labels in sorted class order.

    A file that cannot be read either stops the run with its path (``bad_images=fail``) or is
    skipped: a warning names it and the next readable image takes its place
    (``bad_images=skip``); ``skipped`` counts them in this process.
    """

    def __init__(self, root: Path, classes: list[str], transform, bad_images: str = "fail"):
        self.root = Path(root)
        self.classes = list(classes)
        self.transform = transform
        self.bad_images = bad_images
        self.samples: list[tuple[str, int]] = []
        for label, c in enumerate(classes):
            for f in sorted((self.root / c).iterdir()):
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    self.samples.append((str(f), label))
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: str) -> Image.Image:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()
        return img.convert("RGB")  # some ImageNet images are greyscale or CMYK

    def __getitem__(self, index: int):
        for attempt in range(len(self.samples)):
            path, label = self.samples[(index + attempt) % len(self.samples)]
            try:
                img = self._load(path)
            except (OSError, UnidentifiedImageError, ValueError) as err:
                if self.bad_images == "fail":
                    raise DataError(f"cannot read image {path}: {err} (set data.bad_images=skip "
                                    f"to skip unreadable files)") from None
                self.skipped += 1
                print(f"[ladder] warning: skipping unreadable image {path}: {err}",
                      file=sys.stderr, flush=True)
                continue
            return self.transform(img), label
        raise DataError(f"no readable image under {self.root}")


class SyntheticDataset(Dataset):
    """Random images and labels of the requested shape (for throughput only)."""

    def __init__(self, size: int, image_size: int, num_classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, num_classes, (size,), generator=g)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        g = torch.Generator().manual_seed(index)
        return torch.randn(3, self.image_size, self.image_size, generator=g), int(self.labels[index])


# ----------------------------------------------------------------------------- transforms
def build_transforms(data: DataConfig, recipe: RecipeConfig):
    """timm's train and eval transforms for the recipe at ``data.image_size``.

    Eval: resize to ``image_size / eval_crop_ratio`` (256 at 224), center crop ``image_size``;
    the same proportion at every other size.
    """
    from timm.data import create_transform

    train = create_transform(
        data.image_size, is_training=True, scale=(recipe.crop_scale_min, 1.0),
        auto_augment=recipe.randaugment,
        color_jitter=recipe.color_jitter or 0.0,
        interpolation=recipe.interpolation,
        re_prob=recipe.random_erasing, re_mode=recipe.random_erasing_mode,
        re_count=recipe.random_erasing_count)
    val = create_transform(data.image_size, is_training=False, interpolation=recipe.interpolation,
                           crop_pct=recipe.eval_crop_ratio)
    return train, val


class EpochSampler(torch.utils.data.Sampler):
    """Deterministic, resumable, rank-sharded order: epoch e's permutation depends only on
    (seed, e); each rank takes every world_size-th index of it (a distributed sampler
    reshuffled every epoch); ``start`` skips the samples a resumed run has already seen.

    Yields ``(epoch, index)`` so :class:`SeededDataset` can seed each sample's augmentation,
    which makes the data a pure function of (seed, epoch, index), whatever the workers.
    Only whole optimizer steps are kept per epoch (a multiple of ``step_samples``).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1,
                 step_samples: int = 1):
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.per_rank = (size // world_size) // step_samples * step_samples
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.per_rank - self.start

    def global_order(self) -> torch.Tensor:
        """This epoch's order over all ranks, cut to whole shards: rank r's shard is
        ``global_order()[r::world_size]``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=g)[:self.per_rank * self.world_size]

    def __iter__(self):
        order = self.global_order()[self.rank::self.world_size]
        for index in order[self.start:].tolist():
            yield self.epoch, index


class SeededDataset(Dataset):
    """Seeds python, numpy and torch's CPU generator from (seed, epoch, index) before loading a
    sample, so a sample's random augmentation is the same in any worker and after any resume.

    Only the CPU generator: ``torch.manual_seed`` would also reseed every CUDA generator of the
    training process (with ``num_workers=0``), so its drop-path masks would repeat per sample
    seed. In the main process the three states are restored after the sample.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        epoch, index = item if isinstance(item, tuple) else (0, item)
        s = (self.seed * 1_000_003 + epoch) * 10_000_019 + index
        in_main = torch.utils.data.get_worker_info() is None
        if in_main:  # num_workers=0: leave the training process's own generators untouched
            saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.default_generator.manual_seed(s)  # the CPU stream torch.manual_seed(s) gave
        try:
            return self.dataset[index]
        finally:
            if in_main:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    train_sampler: EpochSampler
    source: str  # where the images come from, for the banner and the results
    train_size: int
    val_size: int
    pipeline: str  # "device" (in memory, batched augmentation) or "loader" (per image)
    classes: tuple[str, ...] = ()  # the class folders read, in label order
    holdout: Any = None  # the held-out training images' loader (data.holdout > 0), else None
    split: dict | None = None  # the held-out split's record (ladder/data/split.py)

    def identity(self, name: str) -> dict:
        """What was actually read, so that runs on two different image folders under one
        preset are never averaged together: the data group's name, the class names and the
        image counts, and a short id hashing them (``<name>-<8 hex>``)."""
        import hashlib
        import json

        facts = {"classes": list(self.classes), "train_images": self.train_size,
                 "val_images": self.val_size}
        if self.split:  # only then: runs without a split keep the ids they always had
            facts["holdout"] = self.split
        digest = hashlib.sha1(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:8]
        return {"id": f"{name}-{digest}", "name": name, "num_classes": len(self.classes),
                **facts}


def resolve_root(data: DataConfig) -> Path:
    """The ImageNet-layout folder of an image-folder dataset (generated or downloaded first)."""
    if data.name == "demo":
        return ensure_demo_dataset(data)
    if data.name == "imagenette":
        return imagenette_root(data)
    if not data.root:
        raise DataError(f"data.root is not set: data={data.name} needs "
                        f"data.root=/path/with/train_and_val")
    return Path(data.root).expanduser()


def build_datasets(data: DataConfig, recipe: RecipeConfig, transforms=None):
    """(train dataset, val dataset, source description) for the configured data."""
    train_tf, val_tf = transforms or build_transforms(data, recipe)
    if data.name == "synthetic":
        return (SyntheticDataset(data.synthetic_train_size, data.image_size, data.num_classes, 0),
                SyntheticDataset(data.synthetic_val_size, data.image_size, data.num_classes, 1),
                "synthetic random tensors")
    root = resolve_root(data)
    classes = check_image_folder(root)
    if len(classes) != data.num_classes:
        raise DataError(f"{root} has {len(classes)} classes but data.num_classes="
                        f"{data.num_classes}; set data.num_classes={len(classes)}")
    train = ImageFolderDataset(root / "train", classes, train_tf, data.bad_images)
    val = ImageFolderDataset(root / "val", classes, val_tf, data.bad_images)
    return train, val, str(root)


def use_device_pipeline(data: DataConfig, num_images: int | None = None) -> bool:
    """data.pipeline=device, or auto for an image folder whose uint8 copy fits the limit."""
    if data.pipeline != "auto":
        return data.pipeline == "device"
    if data.name in ("synthetic", "imagenet"):
        return False
    return num_images is None or num_images * 3 * data.image_size ** 2 <= data.device_max_mb * 2**20


def build_loaders(data: DataConfig, recipe: RecipeConfig, batch_size: int, accum_steps: int,
                  seed: int, rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                  device: torch.device | str = "cpu", log=print) -> Loaders:
    """Train loader (an :class:`EpochSampler`; call ``train_sampler.set_epoch`` before each
    epoch) and val loader (each rank a contiguous, non-padded shard, so every val image is
    counted exactly once over all ranks). The in-memory device path
    (:mod:`ladder.data.device`) or the per-image loader, by ``data.pipeline``."""
    device = torch.device(device)
    device_path = use_device_pipeline(data) and data.name != "synthetic"
    if device_path:
        from ladder.data import device as dd

        transforms = (dd._train_transform(data.image_size, recipe),
                      dd._eval_transform(data.image_size, recipe))
        train, val, source = build_datasets(data, recipe, transforms)
        if not use_device_pipeline(data, len(train) + len(val)):
            device_path = False
    if not device_path:
        train, val, source = build_datasets(data, recipe)
    holdout, split = None, None
    if data.holdout:
        holdout = ImageFolderDataset(Path(source) / "train", train.classes, val.transform,
                                     data.bad_images)
        split = split_holdout(train, holdout, data.holdout, data.holdout_seed)
    step_samples = batch_size * accum_steps
    if len(train) // world_size < step_samples:
        raise DataError(f"the training set ({len(train)} images in {source}) is smaller than one "
                        f"optimizer step ({batch_size} x {accum_steps} accumulation x {world_size} "
                        f"ranks): lower trainer.batch_size or trainer.global_batch")
    sampler = EpochSampler(len(train), seed, rank, world_size, step_samples)
    n = len(val)  # balanced contiguous shards, none empty while n >= world_size
    lo, hi = rank * n // world_size, (rank + 1) * n // world_size
    if device_path:
        cache = default_cache_dir() / "tensors"
        root = Path(source)
        quiet = (lambda msg: None) if rank else log
        xt, yt = dd.decode_folder(train, data.image_size, cache, root / "train", "train", quiet)
        xv, yv = dd.decode_folder(val, data.image_size, cache, root / "val", "val", quiet)
        augment = dd.BatchAugment(data.image_size, recipe).to(device)
        train_loader = dd.DeviceTrainLoader(xt.to(device), yt.to(device), sampler, batch_size,
                                            augment, seed)
        val_loader = dd.DeviceEvalLoader(xv[lo:hi].to(device), yv[lo:hi].to(device), batch_size)
        hold_loader = None
        if holdout is not None:
            xh, yh = dd.decode_folder(holdout, data.image_size, cache, root / "train", "holdout",
                                      quiet)
            h_lo, h_hi = _shard(len(holdout), rank, world_size)
            hold_loader = dd.DeviceEvalLoader(xh[h_lo:h_hi].to(device), yh[h_lo:h_hi].to(device),
                                              batch_size)
        return Loaders(train_loader, val_loader, sampler, source, len(train), len(val), "device",
                       _classes(train, data), hold_loader, split)
    workers = data.num_workers
    # Each loader draws its workers' base seed from its own generator, not the global torch
    # RNG, so creating an iterator (a resumed run creates one more) never shifts drop path or
    # other global draws; sample augmentation is seeded per (seed, epoch, index) anyway.
    common = dict(num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0,
                  generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(SeededDataset(train, seed), batch_size, sampler=sampler,
                              drop_last=True, **common)
    shard = torch.utils.data.Subset(val, range(lo, hi))
    val_loader = DataLoader(shard, batch_size, shuffle=False, drop_last=False, **common)
    hold_loader = None
    if holdout is not None:
        h_shard = torch.utils.data.Subset(holdout, range(*_shard(len(holdout), rank, world_size)))
        hold_loader = DataLoader(h_shard, batch_size, shuffle=False, drop_last=False, **common)
    return Loaders(train_loader, val_loader, sampler, source, len(train), len(val), "loader",
                   _classes(train, data), hold_loader, split)


def _shard(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous, balanced slice of ``n`` evaluation images."""
    return rank * n // world_size, (rank + 1) * n // world_size


def _classes(train: Dataset, data: DataConfig) -> tuple[str, ...]:
    """The class names of an image folder; synthetic data has numbered classes."""
    classes = getattr(train, "classes", None)
    return tuple(classes) if classes else tuple(f"class{i}" for i in range(data.num_classes))
