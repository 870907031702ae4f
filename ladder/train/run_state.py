"""A run's state: what a checkpoint holds, and how it is saved and read back.

Everything a rerun needs to continue bit for bit (on the CPU): weights, optimizer, grad scaler,
EMA, the loop's counters, the running loss sums, the history, the W&B run id, the clocks, and
the random generators. Checkpoints are read onto the CPU (as timm does) and ``load_state_dict``
moves each tensor to where its module lives; the generator states must be CPU tensors anyway.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ladder.utils import checkpoint as ckpt

FORMAT = 1


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Every global generator the training process draws from, as checkpoint-safe values.
    On CUDA only this process's own generator (its device's): a checkpoint written where 8
    GPUs were visible must resume where 1 is."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if device is not None and device.type == "cuda":
        state["cuda_device"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore :func:`rng_state`. Tensors are brought to the CPU first (a generator state is a
    CPU byte tensor whatever device the checkpoint was mapped to)."""
    torch.set_rng_state(_cpu(state["torch"], "torch"))
    n = state["numpy"]
    np.random.set_state(("MT19937", _cpu(n["key"], "numpy").numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device is None or device.type != "cuda":
        return
    if "cuda_device" in state:
        torch.cuda.set_rng_state(_cpu(state["cuda_device"], "cuda"), device)
    elif "cuda" in state:  # older checkpoints: every visible device's, in device order
        own = state["cuda"]
        if device.index is not None and device.index < len(own):
            torch.cuda.set_rng_state(_cpu(own[device.index], "cuda"), device)


def _cpu(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.device.type == "meta":
        raise ckpt.CheckpointError(f"the saved {name} generator state has no data (meta "
                                   "tensor): the checkpoint was not read onto the CPU")
    return t.detach().cpu()


@dataclass
class Parts:
    """The objects a checkpoint saves and restores in place: the plain (uncompiled, unwrapped)
    model, its optimizer and grad scaler, and the EMA's module (``None`` without EMA)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: nn.Module | None


@dataclass
class Progress:
    """The loop's position, running sums and clocks: the rest of what a checkpoint holds.

    ``epoch_loss`` / ``epoch_seen`` are the running training-loss sum and image count of the
    current epoch (rank 0's checkpoint holds every rank's); ``wall_time_s`` is the wall time of
    every segment so far, ``train_time_s`` / ``train_images`` the time and images in training
    steps only."""

    epoch: int
    step: int
    batch_in_epoch: int
    epoch_loss: torch.Tensor
    epoch_seen: int
    history: list[dict]
    wandb_id: str | None
    wall_time_s: float
    train_time_s: float
    train_images: int


def state_of(name: str, parts: Parts, progress: Progress,
             device: torch.device | None = None) -> dict[str, Any]:
    """What the checkpoint of run ``name`` (the rung or the backbone) holds; ``device`` is the
    run's (on CUDA its generator is saved too)."""
    return {
        "format": FORMAT,
        "rung": name,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        "epoch": progress.epoch,
        "step": progress.step,
        "batch_in_epoch": progress.batch_in_epoch,
        "epoch_loss": progress.epoch_loss.cpu(),
        "epoch_seen": progress.epoch_seen,
        "history": json.dumps(progress.history),
        "rng": rng_state(device),
        "wandb_id": progress.wandb_id,
        "wall_time_s": progress.wall_time_s,
        "train_time_s": progress.train_time_s,
        "train_images": progress.train_images,
    }


def sum_over_ranks(loss_sum: torch.Tensor, seen: int, world: int) -> tuple[float, int]:
    """(training-loss sum, images) over all ranks: an all-reduce under torchrun (every rank
    calls it at the same point), this process's own values otherwise."""
    if world == 1:
        return loss_sum.item(), seen
    sums = torch.stack([loss_sum, torch.full_like(loss_sum, seen)])
    dist.all_reduce(sums)
    return sums[0].item(), int(sums[1].item())


def save(path: Path, state: dict[str, Any] | None, world: int) -> None:
    """Write ``state`` (rank 0's; ``None`` on the other ranks) to ``path``; under torchrun
    everybody then waits, so no rank runs ahead of a checkpoint."""
    if state is not None:
        ckpt.save(state, path)
    if world > 1:
        dist.barrier()


def load(path: Path, name: str, parts: Parts, device: torch.device | None = None,
         warn: Callable[[str], None] = print) -> tuple[Progress, Path]:
    """Restore ``parts`` and the generators from ``path`` (or the previous checkpoint if it is
    corrupt), which must belong to run ``name``; returns the saved progress and the file used.
    The generators are the saving rank's: other ranks offset theirs afterwards. ``warn`` gets
    the messages about a corrupt file or a precision change."""
    state, path = ckpt.load_latest(path, map_location="cpu", warn=warn)
    if state.get("rung") != name:
        raise ckpt.CheckpointError(f"checkpoint {path} belongs to {state.get('rung')!r}, "
                                   f"not {name!r}")
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])  # moves the moments to the params' device
    if parts.scaler.is_enabled() and not state["scaler"]:
        # Saved without a scaler (bf16 or fp32), resumed in fp16: load_state_dict would refuse.
        warn(f"[ladder] note: checkpoint {path} holds no fp16 grad-scaler state (it was "
             "trained in bf16 or fp32); the scaler starts afresh")
    else:
        parts.scaler.load_state_dict(state["scaler"])  # a no-op for a disabled scaler
    if parts.ema is not None and state["ema"] is not None:
        parts.ema.load_state_dict(state["ema"])
    set_rng_state(state["rng"], device)
    progress = Progress(
        epoch=state["epoch"], step=state["step"], batch_in_epoch=state["batch_in_epoch"],
        epoch_loss=state["epoch_loss"], epoch_seen=state["epoch_seen"],
        history=json.loads(state["history"]), wandb_id=state["wandb_id"],
        wall_time_s=state["wall_time_s"], train_time_s=state["train_time_s"],
        train_images=state["train_images"])
    return progress, path
