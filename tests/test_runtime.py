"""Compute threads on a CPU (ladder/utils/runtime.py): an explicit setting, OMP_NUM_THREADS, else the
process's share of the available cores."""
from __future__ import annotations

import pytest
import torch

from ladder.utils import runtime


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(runtime, "available_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_default_is_this_processs_share_of_the_available_cores(four_cores):
    assert runtime.choose_cpu_threads(None) == 4
    assert runtime.choose_cpu_threads(None, world=2) == 2  # two processes on this machine
    assert runtime.choose_cpu_threads(None, world=8) == 1  # never below one


def test_an_explicit_setting_then_omp_num_threads_win(four_cores, monkeypatch):
    assert runtime.choose_cpu_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    assert runtime.choose_cpu_threads(None) == before  # torch read the env at start-up
    assert runtime.choose_cpu_threads(2) == 2


def test_zero_threads_is_refused():
    from ladder.ladders.schema import ConfigError, TrainerConfig

    with pytest.raises(ConfigError, match="trainer.cpu_threads=0"):
        TrainerConfig(cpu_threads=0)


def test_available_cores_follows_the_affinity_mask():
    assert 1 <= runtime.available_cores() <= (__import__("os").cpu_count() or 1)
