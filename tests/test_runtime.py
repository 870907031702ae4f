"""Compute threads on a CPU (ladder/runtime.py): an explicit setting, OMP_NUM_THREADS, else the
cores the loader's workers leave over; the trainer applies it and records the device."""
from __future__ import annotations

import pytest
import torch

from ladder import runtime


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_loader_workers_leave_their_cores_to_them(four_cores):
    assert runtime.choose_cpu_threads(None, loader_workers=0) == 4  # the device path: all cores
    assert runtime.choose_cpu_threads(None, loader_workers=1) == 3
    assert runtime.choose_cpu_threads(None, loader_workers=4) == 1  # never below one
    assert runtime.choose_cpu_threads(None, loader_workers=6) == 1
    assert runtime.choose_cpu_threads(None, loader_workers=0, world=2) == 2  # 2 processes


def test_an_explicit_setting_then_omp_num_threads_win(four_cores, monkeypatch):
    assert runtime.choose_cpu_threads(3, loader_workers=2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    assert runtime.choose_cpu_threads(None, loader_workers=2) == before  # torch read the env
    assert runtime.choose_cpu_threads(2, loader_workers=2) == 2


def test_zero_threads_is_refused():
    from ladder.schema import ConfigError, TrainerConfig

    with pytest.raises(ConfigError, match="trainer.cpu_threads=0"):
        TrainerConfig(cpu_threads=0)


def test_available_cores_follows_the_affinity_mask():
    assert 1 <= runtime.available_cores() <= (__import__("os").cpu_count() or 1)
