"""Per-sample seeding (ladder.data.loaders.SeededDataset) leaves the training process's
generators alone; synthetic batches are made on the device; the loader path's workers default
to each rank's share of the cores.

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


# ----------------------------------------------------------------------------- synthetic data
def _synthetic(tiny, *extra):
    cfg = tiny("micro", "data=synthetic", "data.num_classes=5", "data.image_size=16",
               "data.synthetic_train_size=24", "data.synthetic_val_size=6", *extra)
    return cfg, data.build_loaders(cfg.data, cfg.recipe, 4, 1, cfg.seed, rank=0, world_size=1)


def test_synthetic_batches_are_made_on_the_device_without_per_sample_seeding(tiny, monkeypatch):
    swaps = []
    monkeypatch.setattr(torch, "set_rng_state", lambda s: swaps.append(s))
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    expected = torch.rand(2), random.random(), np.random.rand()
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    cfg, loaders = _synthetic(tiny)
    assert loaders.pipeline == "device" and loaders.train_size == 24 and loaders.val_size == 6
    loaders.train_sampler.set_epoch(1)
    batches = list(loaders.train)
    got = torch.rand(2), random.random(), np.random.rand()
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:] and swaps == []
    assert len(batches) == 6 and batches[0][0].shape == (4, 3, 16, 16)
    # labels are the loader path's, per index; image i is the same in every epoch
    labels = data.SyntheticDataset(24, 16, 5, seed=0).labels
    order = loaders.train_sampler.global_order()
    assert torch.equal(torch.cat([y for _, y in batches]), labels[order])
    loaders.train_sampler.set_epoch(2)
    again = torch.cat([x for x, _ in loaders.train])
    first = torch.cat([x for x, _ in batches])
    order2 = loaders.train_sampler.global_order()
    where = {int(i): k for k, i in enumerate(order2)}
    assert all(torch.equal(first[k], again[where[int(i)]]) for k, i in enumerate(order))


def test_synthetic_batches_are_a_function_of_seed_epoch_and_index(tiny):
    _, a = _synthetic(tiny)
    _, b = _synthetic(tiny)
    a.train_sampler.set_epoch(3)
    b.train_sampler.set_epoch(3, start=8)  # resumed after two batches of 4
    full, resumed = list(a.train), list(b.train)
    assert len(resumed) == len(full) - 2
    assert all(torch.equal(x, xr) and torch.equal(y, yr)
               for (x, y), (xr, yr) in zip(full[2:], resumed))
    _, loader = _synthetic(tiny, "data.pipeline=loader")  # the per-image path is still there
    assert loader.pipeline == "loader"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_synthetic_batches_are_made_on_cuda(tiny):
    cfg, _ = _synthetic(tiny)
    loaders = data.build_loaders(cfg.data, cfg.recipe, 4, 1, cfg.seed, device="cuda")
    x, y = next(iter(loaders.train))
    assert x.device.type == "cuda" and y.device.type == "cuda"
    assert loaders.train.images.device.type == "cuda"


# ----------------------------------------------------------------------------- loader workers
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_loader_workers_default_to_the_ranks_share_of_the_cores(tiny, tmp_path, monkeypatch):
    from conftest import write_image_folder

    monkeypatch.setattr(data, "available_cores", lambda: 16)
    assert data.choose_num_workers(None, 1) == 16 and data.choose_num_workers(None, 8) == 2
    assert data.choose_num_workers(None, 32) == 1 and data.choose_num_workers(3, 8) == 3
    assert data.choose_num_workers(0, 1) == 0
    root = write_image_folder(tmp_path / "f")
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
               "data.pipeline=loader", "data.num_workers=null")
    assert cfg.data.num_workers is None
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    loaders = data.build_loaders(cfg.data, cfg.recipe, 4, 1, cfg.seed)
    assert loaders.num_workers == 4 and loaders.train.num_workers == 4


def test_a_negative_worker_count_is_refused(tiny):
    from ladder.nets.config import ConfigError

    with pytest.raises(ConfigError, match="data.num_workers=-1"):
        tiny("micro", "data.num_workers=-1")
