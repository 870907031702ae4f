"""Atomic, safe checkpoints.

Written as temp file -> fsync -> rename (a crash mid-write leaves the previous file intact);
read with ``torch.load(weights_only=True)``, so loading a checkpoint never executes code. Only
tensors, numbers, strings, lists, tuples and dicts go in (RNG states are stored as tensors;
ladder/train/run_state.py says what a run's checkpoint holds).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; the message names the file."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def _atomic(path: Path, write) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise CheckpointError(f"cannot write {path}: {err.strerror or err} (the previous file, "
                              f"if any, is intact)") from None


def previous_path(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept (``last.pt`` -> ``prev.pt``)."""
    return Path(path).with_name("prev" + Path(path).suffix)


def save(state: dict[str, Any], path: Path, keep_previous: bool = True) -> None:
    """Write ``state`` to ``path`` atomically; the file it replaces is kept as ``prev.pt``,
    so even a checkpoint that is later found corrupt has a fallback."""
    path = Path(path)

    def write(f) -> None:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
        if keep_previous and path.exists():  # rotate only once the new data is on disk
            os.replace(path, previous_path(path))

    _atomic(path, write)


def load_latest(path: Path, map_location: str | torch.device = "cpu",
                warn=print) -> tuple[dict[str, Any], Path]:
    """Load ``path``, or, if it is missing or corrupt, the previous checkpoint beside it.

    Returns (state, the file it came from). Fails naming every file tried."""
    path = Path(path)
    errors = []
    for candidate in (path, previous_path(path)):
        if not candidate.exists():
            continue
        try:
            return load(candidate, map_location), candidate
        except CheckpointError as err:
            errors.append(str(err))
            warn(f"[ladder] warning: {err}; trying the previous checkpoint")
    raise CheckpointError("no usable checkpoint: " + "; ".join(errors) if errors
                          else f"no checkpoint at {path}")


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; a corrupt file fails naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt "
                              f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})") from None
