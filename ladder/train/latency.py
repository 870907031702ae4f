"""Inference latency of a trained model on the run's device: eval mode, no grad, the run's
autocast dtype and memory format, warm-up first, then the median of timed repeats (CUDA
synchronized around each). Stored in result.json as ``latency_ms`` {batch: median ms}.

A benchmark, not a test: the numbers depend on the machine and its load, so the report prints
them beside the device they were measured on and never compares them across machines.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn


@torch.no_grad()
def measure_latency(model: nn.Module, image_size: int, device: torch.device,
                    dtype: torch.dtype = torch.float32, batches=(1, 64), warmup: int = 3,
                    repeats: int = 10, channels_last: bool = False) -> dict[str, float]:
    """{str(batch): median milliseconds of one forward pass}."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        for batch in batches:
            x = torch.randn(batch, 3, image_size, image_size, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            times = []
            for i in range(warmup + repeats):
                _sync(device)
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    model(x)
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
            out[str(batch)] = round(1000 * statistics.median(times), 3)
    finally:
        model.train(was_training)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
