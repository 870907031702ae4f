"""The in-memory data path: decode once, keep uint8 tensors on the training device, augment
whole batches there.

For datasets that fit in memory (the demo, Imagenette at low resolution, any small image folder)
the per-image PIL pipeline (decode + RandAugment per sample in loader workers) costs more than
the small proxy networks it feeds. Here every image is decoded once into a uint8 tensor file
(cached under ``$LADDER_CACHE/tensors``, keyed by the source files' names, sizes and mtimes, the
stored size and the transform that made the stored pixels (resize, interpolation, crop); rebuilt
when any of them changes; written atomically), held on the training device, and augmented per
sample but in batches by :class:`ladder.data.augment.BatchAugment` (random-resized crop, flip,
RandAugment, random erasing, as batched tensor ops with no host syncs; Mixup/CutMix stay timm's,
in the trainer).

Determinism: the epoch order is :class:`ladder.data.loaders.EpochSampler`'s (a function of seed and
epoch, sharded by rank); the random draws of a global batch (all ranks' rows of one step) are
made whole from the global RNG forked and seeded by (seed, epoch, batch position), and each rank
augments its own rows with their draws, so every sample's pixels are a function of (seed, epoch,
global batch), the same under torchrun as in one process with that global batch; a resumed run
is bit-identical on the CPU, and the training process's own RNG (drop path, Mixup) is not
touched.

Where it differs from timm's per-image pipeline: crops are taken from a square copy stored at
``image_size`` (short side resized, center cropped), not from the full-resolution source; the
interpolation of the crop and of RandAugment's geometric ops is ``grid_sample``'s
(ladder/data/augment.py lists the rest).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
import torch

from ladder.data.augment import BatchAugment  # noqa: F401  (re-exported for ladder.data.loaders)
from ladder.utils.checkpoint import atomic_write_bytes
from ladder.ladders.schema import RecipeConfig

CACHE_FORMAT = "ladder.tensors/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- decode once
def _fingerprint(samples: list[tuple[str, int]], root: Path, size: int, mode: str,
                 transform=None) -> str:
    h = hashlib.sha1(f"{CACHE_FORMAT}|{size}|{mode}|{describe_transform(transform)}".encode())
    for path, label in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def describe_transform(transform) -> str:
    """A stable text of everything in ``transform`` that decides the stored pixels: its repr
    (torchvision's and timm's name each step's size, interpolation, crop and antialias), with
    object addresses removed, and the Pillow version that runs it."""
    import PIL

    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))
    return f"{text}|Pillow {PIL.__version__}"


def _eval_transform(size: int, recipe: RecipeConfig):
    """timm's eval transform without ToTensor/Normalize: resize to size / crop ratio, center crop."""
    from timm.data import create_transform

    tf = create_transform(size, is_training=False, interpolation=recipe.interpolation,
                          crop_pct=recipe.eval_crop_ratio)
    return _pil_only(tf)


def _train_transform(size: int, recipe: RecipeConfig):
    """The stored training copy: short side resized to ``size``, center crop ``size``."""
    from timm.data import create_transform

    return _pil_only(create_transform(size, is_training=False, interpolation=recipe.interpolation,
                                      crop_pct=1.0))


def _pil_only(tf):
    from torchvision import transforms as T

    keep = [t for t in tf.transforms if not isinstance(t, (T.ToTensor, T.Normalize))
            and type(t).__name__ not in ("MaybeToTensor", "ToNumpy")]
    return T.Compose(keep)


def decode_folder(dataset, size: int, cache_dir: Path, root: Path, mode: str,
                  log=print) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 3, size, size], int64 labels [N]) of an
    :class:`ladder.data.loaders.ImageFolderDataset` whose transform yields ``size`` x ``size`` PIL
    images; loaded from the cache when neither the source files nor ``dataset.transform``
    have changed."""
    key = _fingerprint(dataset.samples, root, size, mode, getattr(dataset, "transform", None))
    path = cache_dir / f"{mode}-{size}px-{key}.pt"
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            return blob["images"], blob["labels"]
        except Exception as err:  # a damaged cache is rebuilt, never trusted
            log(f"[ladder] tensor cache {path} is unreadable ({type(err).__name__}); rebuilding")
    log(f"[ladder] decoding {len(dataset)} {mode} images from {root} into {path} (once)")
    images = torch.empty(len(dataset), 3, size, size, dtype=torch.uint8)
    labels = torch.empty(len(dataset), dtype=torch.long)
    for i in range(len(dataset)):
        img, label = dataset[i]
        arr = np.array(img, dtype=np.uint8)
        if arr.shape[:2] != (size, size):
            raise ValueError(f"stored image {i} has shape {arr.shape}, expected {size}x{size}")
        images[i] = torch.from_numpy(arr).permute(2, 0, 1)
        labels[i] = label
    buf = io.BytesIO()
    torch.save({"format": CACHE_FORMAT, "images": images, "labels": labels}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return images, labels


# ----------------------------------------------------------------------------- augmentation
# The batched augmentation lives in ladder/data/augment.py; BatchAugment is re-exported here.


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float().div_(255) - mean) / std


# ----------------------------------------------------------------------------- loaders
class DeviceTrainLoader:
    """Batches of (augmented images, labels) on the device, in :class:`EpochSampler` order.

    ``len`` and iteration follow the sampler (``set_epoch(epoch, start)`` skips seen samples).
    Batch ``b`` of every rank is cut from the same global batch (``batch_size x world_size``
    consecutive samples of the epoch's global order, rank r taking rows r, r + W, ...). The
    random draws of that global batch are made whole from the global RNG, forked and seeded by
    (seed, epoch, b); each rank augments only its own rows, with their draws: each sample's
    pixels are the same under torchrun as in one process with the same global batch, and the
    augmentation's work is split across ranks.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sampler, batch_size: int,
                 augment: BatchAugment, seed: int):
        self.images, self.labels, self.sampler = images, labels, sampler
        self.batch_size, self.augment, self.seed = batch_size, augment, seed
        self.device = images.device

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        world, rank, epoch = self.sampler.world_size, self.sampler.rank, self.sampler.epoch
        order = self.sampler.global_order().to(self.device)
        first = self.sampler.start // self.batch_size
        step = self.batch_size * world
        devices = [self.device] if self.device.type == "cuda" else []
        for b in range(first, first + len(self)):
            index = order[b * step:(b + 1) * step][rank::world]
            x, y = self.images[index], self.labels[index]
            seed = (self.seed * 1_000_003 + epoch) * 1009 * 100_003 + b
            with torch.random.fork_rng(devices=devices, device_type=self.device.type):
                torch.manual_seed(seed)
                x = self.augment(x, rank, world)
            yield x, y


class DeviceEvalLoader:
    """The val shard in order, normalized on the device (resized/cropped once at cache time)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.labels), self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield normalize(self.images[sl], self.mean, self.std), self.labels[sl]

