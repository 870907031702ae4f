"""The in-memory data path: decode once, keep uint8 tensors on the training device, augment
whole batches there.

For datasets that fit in memory (the demo, Imagenette at low resolution, any small image folder)
the per-image PIL pipeline (decode + RandAugment per sample in loader workers) costs more than
the small proxy networks it feeds. Here every image is decoded once into a uint8 tensor file
(cached under ``$LADDER_CACHE/tensors``, keyed by the source files' names, sizes and mtimes and
the stored size; rebuilt when any of them changes; written atomically), held on the training
device, and augmented per sample but in batches with kornia (random-resized crop, flip,
RandAugment, random erasing; Mixup/CutMix stay timm's, in the trainer).

Determinism: the epoch order is :class:`ladder.data.EpochSampler`'s (a function of seed and
epoch, sharded by rank); a global batch (all ranks' rows of one step) is augmented whole from a
generator seeded by (seed, epoch, batch position), so every sample's pixels are a function of
(seed, epoch, global batch), the same under torchrun as in one process with that global batch;
a resumed run is bit-identical on the CPU, and the training process's own RNG (drop path,
Mixup) is not touched.

Where it differs from timm's per-image pipeline (measured in the README):
* crops are taken from a square copy stored at ``image_size`` (short side resized, center
  cropped), not from the full-resolution source;
* RandAugment is kornia's: its op set (translate up to 10% of the side, timm's 45%), ``n``
  draws of one op per group of ``augment_group`` rows (the same op for the rows of a group,
  each row takes it with probability 0.5 as in timm, random sign per row), magnitude m9 of
  timm's 0-10 scale mapped to 27 of kornia's 0-30, no magnitude noise (timm's ``mstd0.5``)
  and no ``inc1`` variants;
* random erasing fills with 0 after normalization (the mean), not per-pixel noise.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ladder.checkpoint import atomic_write_bytes
from ladder.schema import RecipeConfig

CACHE_FORMAT = "ladder.tensors/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- decode once
def _fingerprint(samples: list[tuple[str, int]], root: Path, size: int, mode: str) -> str:
    h = hashlib.sha1(f"{CACHE_FORMAT}|{size}|{mode}".encode())
    for path, label in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


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
    :class:`ladder.data.ImageFolderDataset` whose transform yields ``size`` x ``size`` PIL
    images; loaded from the cache when the source files have not changed."""
    key = _fingerprint(dataset.samples, root, size, mode)
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
class BatchAugment(torch.nn.Module):
    """The recipe's training augmentation, per sample, on whole batches (kornia).

    Input uint8 [B, 3, S, S] on any device; output normalized float [B, 3, size, size].
    """

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
            # One op per draw; timm applies each of its n ops to an image with probability 0.5.
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
        """``n`` ops drawn for this group of rows, each applied to a row with probability 0.5."""
        for _ in range(self.ops):
            rows = torch.rand(len(x), device=x.device) < 0.5
            if rows.any():
                x = x.clone()
                x[rows] = self.randaugment(x[rows]).clamp_(0, 1)
        return x


def _parse_randaugment(spec: str) -> tuple[int, float]:
    """(n ops, magnitude on timm's 0-10 scale) of a timm string like ``rand-m9-mstd0.5-inc1``."""
    n, m = 2, 9.0
    for part in spec.split("-")[1:]:
        if part.startswith("mstd"):
            continue
        if part.startswith("m"):
            m = float(part[1:])
        elif part.startswith("n"):
            n = int(part[1:])
    return n, m


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float().div_(255) - mean) / std


# ----------------------------------------------------------------------------- loaders
class DeviceTrainLoader:
    """Batches of (augmented images, labels) on the device, in :class:`EpochSampler` order.

    ``len`` and iteration follow the sampler (``set_epoch(epoch, start)`` skips seen samples).
    Batch ``b`` of every rank is cut from the same global batch (``batch_size x world_size``
    consecutive samples of the epoch's global order, rank r taking rows r, r + W, ...), and that
    global batch is augmented whole from a generator seeded by (seed, epoch, b): each sample's
    pixels are the same under torchrun as in one process with the same global batch. Every rank
    augments the global batch (the data is resident on each), so augmentation does not get
    cheaper with more ranks; the network's work does.
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
            index = order[b * step:(b + 1) * step]
            x, y = self.images[index], self.labels[index]
            seed = (self.seed * 1_000_003 + epoch) * 1009 * 100_003 + b
            with torch.random.fork_rng(devices=devices, device_type=self.device.type):
                torch.manual_seed(seed)
                x = self.augment(x)
            yield x[rank::world], y[rank::world]


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

