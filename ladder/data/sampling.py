"""The order a run reads its training images in, and what a data path hands the trainer:
:class:`EpochSampler` (seeded, resumable, sharded by rank), :class:`SeededDataset` (per-sample
seeding on the loader path), :class:`Loaders`."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ladder.data.common import DataError


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
    store: dict | None = None  # a prepared pixel store's size and rule (ladder/data/store.py)
    num_workers: int = 0  # the loader path's worker processes per rank

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
        if self.store:  # a prepared store's pixels are its own rule's, not the recipe's
            facts["store"] = self.store
        digest = hashlib.sha1(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:8]
        return {"id": f"{name}-{digest}", "name": name, "num_classes": len(self.classes),
                **facts}


def make_sampler(train_size: int, source: str, batch_size: int, accum_steps: int, seed: int,
                 rank: int, world_size: int) -> EpochSampler:
    """The training order; one sentence when the set is smaller than one optimizer step."""
    step_samples = batch_size * accum_steps
    if train_size // world_size < step_samples:
        raise DataError(f"the training set ({train_size} images in {source}) is smaller than "
                        f"one optimizer step ({batch_size} x {accum_steps} accumulation x "
                        f"{world_size} ranks): lower trainer.batch_size or trainer.global_batch")
    return EpochSampler(train_size, seed, rank, world_size, step_samples)


def shard(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous, balanced slice of ``n`` evaluation images (none empty while
    ``n >= world_size``)."""
    return rank * n // world_size, (rank + 1) * n // world_size
