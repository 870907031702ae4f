"""A run's state: what a checkpoint holds, and how it is saved and read back.

Everything a rerun needs to continue bit for bit (on the CPU): weights, optimizer, grad scaler,
EMA, the loop's counters, the running loss sums, the history, the W&B run id, the clocks, and
the random generators. Checkpoints are read onto the CPU (as timm does) and ``load_state_dict``
moves each tensor to where its module lives; the generator states must be CPU tensors anyway.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from ladder.utils import checkpoint as ckpt

if TYPE_CHECKING:
    from ladder.train.trainer import Trainer

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


def state_of(t: Trainer) -> dict[str, Any]:
    """What ``t``'s checkpoint holds (rank 0's view, with every rank's loss sums)."""
    return {
        "format": FORMAT,
        "rung": t.subject.name,
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scaler": t.scaler.state_dict(),
        "ema": t.ema.module.state_dict() if t.ema is not None else None,
        "epoch": t.epoch,
        "step": t.step,
        "batch_in_epoch": t.batch_in_epoch,
        "epoch_loss": t.epoch_loss.cpu(),
        "epoch_seen": t.epoch_seen,
        "history": json.dumps(t.history),
        "rng": rng_state(t.device),
        "wandb_id": t.wandb_id,
        "wall_time_s": t.wall_before + (time.time() - t.t0),
        "train_time_s": t.train_time,
        "train_images": t.train_images,
    }


def gather_epoch_loss(t: Trainer) -> tuple[float, int]:
    """(training-loss sum, images) of this epoch so far over all ranks. Afterwards rank 0
    holds the totals and the others zero, so rank 0's checkpoint carries everyone's."""
    if t.world == 1:
        return t.epoch_loss.item(), t.epoch_seen
    sums = torch.stack([t.epoch_loss, torch.full_like(t.epoch_loss, t.epoch_seen)])
    dist.all_reduce(sums)
    total, seen = sums[0].item(), int(sums[1].item())
    t.epoch_loss.fill_(total if t.is_main else 0.0)
    t.epoch_seen = seen if t.is_main else 0
    return total, seen


def save(t: Trainer) -> None:
    """Rank 0 writes ``t.ckpt_path``; everybody waits so no rank runs ahead of a checkpoint."""
    if t.world > 1:  # rank 0, the writer, gathers every rank's running loss sums
        gather_epoch_loss(t)
    if t.is_main:
        ckpt.save(state_of(t), t.ckpt_path)
    if t.world > 1:
        dist.barrier()


def load(t: Trainer, path: Path) -> Path:
    """Restore ``t`` from ``path`` (or the previous checkpoint if it is corrupt); returns the
    file used."""
    state, path = ckpt.load_latest(
        path, map_location="cpu",
        warn=lambda msg: print(msg, file=sys.stderr, flush=True) if t.is_main else None)
    if state.get("rung") != t.subject.name:
        raise ckpt.CheckpointError(f"checkpoint {path} belongs to {state.get('rung')!r}, "
                                   f"not {t.subject.name!r}")
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])  # moves the moments to the params' device
    t.scaler.load_state_dict(state["scaler"])
    if t.ema is not None and state["ema"] is not None:
        t.ema.module.load_state_dict(state["ema"])
    t.epoch, t.step = state["epoch"], state["step"]
    t.batch_in_epoch = state["batch_in_epoch"]
    t.epoch_loss = state["epoch_loss"].to(t.device)
    t.epoch_seen = state["epoch_seen"]
    t.history = json.loads(state["history"])
    t.wandb_id = state["wandb_id"]
    t.wall_before = state["wall_time_s"]
    t.train_time, t.train_images = state["train_time_s"], state["train_images"]
    set_rng_state(state["rng"], t.device)
    if t.rank:
        # The saved loss sums are all ranks', held by rank 0; the saved RNG state is rank 0's,
        # so the other ranks offset theirs as at a fresh start.
        t.epoch_loss.zero_()
        t.epoch_seen = 0
        torch.manual_seed(t.cfg.seed + t.rank + 7919 * (t.step + 1))
    return path
