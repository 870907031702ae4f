"""Per-sample seeding (ladder.data.loaders.SeededDataset) leaves the training process's generators alone.

With ``num_workers=0`` the samples load in the training process. Seeding them must not reseed
the CUDA generators (drop path draws its masks there: reseeded per sample, they would repeat
batch after batch) and must leave the CPU, python and numpy streams where they were.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ladder.data import loaders as data


class Draws(Dataset):
    """Each sample: what the three global generators give while it loads."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int):
        return (torch.rand(2), torch.tensor(random.random(), dtype=torch.float64),
                torch.tensor(np.random.rand(), dtype=torch.float64))


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch) * 10_000_019 + index


def _loader(seed: int = 3) -> DataLoader:
    sampler = data.EpochSampler(8, seed)
    sampler.set_epoch(2)
    # the loader's own generator, as build_loaders gives it (else the iterator's base seed is
    # drawn from the global CPU stream)
    return DataLoader(data.SeededDataset(Draws(), seed), batch_size=4, sampler=sampler,
                      num_workers=0, generator=torch.Generator().manual_seed(seed))


def test_loading_in_the_main_process_never_reseeds_cuda(monkeypatch):
    """torch.manual_seed calls torch.cuda.manual_seed_all (queued until CUDA starts, so it
    reseeds the CUDA generators of a CUDA run); loading a batch must call neither."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda s: calls.append(("all", s)))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: calls.append(("one", s)))
    for _ in _loader():
        pass
    assert calls == [], f"loading samples reseeded the CUDA generators: {calls[:3]}"


def test_the_main_process_streams_continue_as_if_nothing_loaded():
    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    expected = torch.rand(3), random.random(), np.random.rand()
    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    for _ in _loader():
        pass
    got = torch.rand(3), random.random(), np.random.rand()
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_a_sample_is_a_function_of_seed_epoch_and_index():
    """The same (seed, epoch, index) gives the same draws, and the CPU stream is the one
    torch.manual_seed(s) gave, so every augmentation is what it was before."""
    ds = data.SeededDataset(Draws(), seed=3)
    first = ds[(2, 5)]
    torch.rand(5)  # the main process's own draws between two loads change nothing
    again = ds[(2, 5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    s = _sample_seed(3, 2, 5)
    assert torch.equal(first[0], torch.rand(2, generator=torch.Generator().manual_seed(s)))
    assert first[1].item() == random.Random(s).random()
    assert first[2].item() == np.random.RandomState(s % 2**32).rand()
    assert not torch.equal(ds[(2, 6)][0], first[0])
    assert not torch.equal(ds[(3, 5)][0], first[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_do_not_repeat_across_batches():
    """On a CUDA machine: the CUDA stream after loading equals the stream with no loading."""
    torch.cuda.manual_seed(7)
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed(7)
    for _ in _loader():
        pass
    assert torch.equal(torch.rand(4, device="cuda"), expected)
