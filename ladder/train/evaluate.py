"""Evaluation: top-1, top-5 and the loss over a validation loader, summed over torchrun's ranks
(each rank holds its own shard; every val image counts once)."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


@torch.no_grad()
def evaluate(module: nn.Module, loader: Iterable, device: torch.device, autocast: Callable,
             channels_last: bool, num_classes: int, world: int = 1) -> dict[str, float]:
    module.eval()
    k = min(5, num_classes)
    stats = torch.zeros(4, device=device, dtype=torch.float64)  # top1, topk, loss, n
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = module(x)
        top = logits.float().topk(k, dim=1).indices
        hit = top == y[:, None]
        stats[0] += hit[:, 0].sum()
        stats[1] += hit.any(dim=1).sum()
        stats[2] += F.cross_entropy(logits.float(), y, reduction="sum")
        stats[3] += y.numel()
    if world > 1:
        dist.all_reduce(stats)
    top1, topk, loss, n = stats.tolist()
    return {"top1": 100 * top1 / n, "top5": 100 * topk / n, "val_loss": loss / n, "val_images": n}
