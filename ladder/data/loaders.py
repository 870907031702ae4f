"""Datasets and loaders: demo (generated), image folders in either layout
(ladder/data/layout.py), Imagenette, synthetic; the device path (ladder/data/device.py) or the
per-image loader.

Transforms come from timm's ``create_transform`` (RandAugment, color jitter, random erasing,
resize/center-crop eval), configured by the recipe. Nothing here imports Hydra or W&B.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

# DataError is defined in ladder.data.common; ladder.data.loaders.DataError is the same class.
from ladder.data.common import DataError
from ladder.data.demo import _demo_image, ensure_demo_dataset  # noqa: F401  (importable here)
from ladder.data.layout import (IMAGE_EXTENSIONS, check_image_folder,  # noqa: F401
                                find_source, resolve_root)
from ladder.data.sampling import (EpochSampler, Loaders, SeededDataset,  # noqa: F401
                                  make_sampler, shard)
from ladder.data.split import split_holdout
from ladder.ladders.schema import DataConfig, RecipeConfig
from ladder.utils.runtime import available_cores


# ----------------------------------------------------------------------------- folders
class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` images with integer labels in sorted class order, or the
    given ``samples`` ((path, label) pairs, e.g. a :class:`ladder.data.layout.Source` split).

    A file that cannot be read either stops the run with its path (``bad_images=fail``) or is
    skipped: a warning names it and the next readable image takes its place
    (``bad_images=skip``); ``skipped`` counts them in this process.
    """

    def __init__(self, root: Path, classes: list[str], transform, bad_images: str = "fail",
                 samples: list[tuple[str, int]] | None = None):
        self.root = Path(root)
        self.classes = list(classes)
        self.transform = transform
        self.bad_images = bad_images
        if samples is None:  # root/<class>/<image>
            samples = [(str(f), label) for label, c in enumerate(classes)
                       for f in sorted((self.root / c).iterdir())
                       if f.suffix.lower() in IMAGE_EXTENSIONS]
        self.samples: list[tuple[str, int]] = list(samples)
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


def build_datasets(data: DataConfig, recipe: RecipeConfig, transforms=None):
    """(train dataset, val dataset, source description) for the configured data."""
    train_tf, val_tf = transforms or build_transforms(data, recipe)
    if data.name == "synthetic":
        return (SyntheticDataset(data.synthetic_train_size, data.image_size, data.num_classes, 0),
                SyntheticDataset(data.synthetic_val_size, data.image_size, data.num_classes, 1),
                "synthetic random tensors")
    root = resolve_root(data)
    source = find_source(root)
    classes = source.classes
    if len(classes) != data.num_classes:
        raise DataError(f"{root} has {len(classes)} classes but data.num_classes="
                        f"{data.num_classes}; set data.num_classes={len(classes)}")
    train = ImageFolderDataset(root / "train", classes, train_tf, data.bad_images,
                               source.splits["train"])
    val = ImageFolderDataset(root / "val", classes, val_tf, data.bad_images, source.splits["val"])
    return train, val, str(root)


def use_device_pipeline(data: DataConfig, num_images: int | None = None) -> bool:
    """data.pipeline=device, or auto for data whose uint8 copy fits data.device_max_mb (a
    prepared store: always)."""
    if data.store:
        return True
    if data.pipeline != "auto":
        return data.pipeline == "device"
    if data.name == "imagenet":
        return False
    if data.name == "synthetic":
        num_images = data.synthetic_train_size + data.synthetic_val_size
    return num_images is None or num_images * 3 * data.image_size ** 2 <= data.device_max_mb * 2**20


def choose_num_workers(requested: int | None, local_world: int = 1) -> int:
    """The loader path's worker processes per rank: ``data.num_workers``, else (null) this
    rank's share of the cores this process may run on (its affinity mask), at least 1, as
    ``trainer.cpu_threads`` is chosen (ladder/utils/runtime.py)."""
    if requested is not None:
        return requested
    return max(1, available_cores() // max(1, local_world))


def build_loaders(data: DataConfig, recipe: RecipeConfig, batch_size: int, accum_steps: int,
                  seed: int, rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                  device: torch.device | str = "cpu", log=print) -> Loaders:
    """Train loader (an :class:`EpochSampler`; call ``train_sampler.set_epoch`` before each
    epoch) and val loader (each rank a contiguous, non-padded shard, so every val image is
    counted exactly once over all ranks). The device path (:mod:`ladder.data.device`: a
    prepared store, the tensor cache of an image folder, or synthetic data made on the device)
    or the per-image loader, by ``data.pipeline`` and ``data.store``."""
    from ladder.data import device as dd

    device = torch.device(device)
    quiet = (lambda msg: None) if rank else log
    if data.store:
        return dd.store_loaders(data, recipe, batch_size, accum_steps, seed, rank, world_size,
                                device, quiet)
    if data.name == "synthetic" and use_device_pipeline(data):
        return dd.synthetic_loaders(data, batch_size, accum_steps, seed, rank, world_size, device)
    device_path = use_device_pipeline(data) and data.name != "synthetic"
    if device_path:  # the tensor cache decodes the files itself
        train, val, source = build_datasets(data, recipe, (None, None))
        device_path = use_device_pipeline(data, len(train) + len(val))
    if not device_path:
        train, val, source = build_datasets(data, recipe)
    holdout, split = None, None
    if data.holdout:
        holdout = ImageFolderDataset(Path(source) / "train", train.classes, val.transform,
                                     data.bad_images, train.samples)
        split = split_holdout(train, holdout, data.holdout, data.holdout_seed)
    if device_path:
        return dd.folder_loaders(train, val, holdout, split, source, data, recipe, batch_size,
                                 accum_steps, seed, rank, world_size, device, quiet)
    sampler = make_sampler(len(train), source, batch_size, accum_steps, seed, rank, world_size)
    workers = choose_num_workers(data.num_workers, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    # Each loader draws its workers' base seed from its own generator, not the global torch
    # RNG, so creating an iterator (a resumed run creates one more) never shifts drop path or
    # other global draws; sample augmentation is seeded per (seed, epoch, index) anyway.
    common = dict(num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0,
                  generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(SeededDataset(train, seed), batch_size, sampler=sampler,
                              drop_last=True, **common)
    shard_of = torch.utils.data.Subset(val, range(*shard(len(val), rank, world_size)))
    val_loader = DataLoader(shard_of, batch_size, shuffle=False, drop_last=False, **common)
    hold_loader = None
    if holdout is not None:
        h_shard = torch.utils.data.Subset(holdout, range(*shard(len(holdout), rank, world_size)))
        hold_loader = DataLoader(h_shard, batch_size, shuffle=False, drop_last=False, **common)
    return Loaders(train_loader, val_loader, sampler, source, len(train), len(val), "loader",
                   _classes(train, data), hold_loader, split, num_workers=workers)


def _classes(train: Dataset, data: DataConfig) -> tuple[str, ...]:
    """The class names of an image folder; synthetic data has numbered classes."""
    classes = getattr(train, "classes", None)
    return tuple(classes) if classes else tuple(f"class{i}" for i in range(data.num_classes))
