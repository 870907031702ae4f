"""Where a run executes: torchrun's ranks, the device and precision, the CPU's compute threads,
the machine's name for benchmark figures, the code's commit."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch
import torch.distributed as dist


def dist_info() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def pick_device(name: str, local_rank: int) -> torch.device:
    """The run's device for ``trainer.device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    A CUDA device is made this process's current device (``torch.cuda.set_device``), so that
    NCCL, the caching allocator and every call without a device use it. Plain ``cuda`` is the
    local rank's GPU; ``cuda:N`` is GPU N whatever the rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise RuntimeError(f"trainer.device={name} but no CUDA device is visible")
    count = torch.cuda.device_count()
    if device.index is None:
        # Clusters that give each task only its own GPU (SLURM's --gpus-per-task, or
        # CUDA_VISIBLE_DEVICES per rank) show one device to a process of local rank 3.
        index = local_rank % count
    elif device.index < count:
        index = device.index
    else:
        raise RuntimeError(f"trainer.device={name} but only {count} CUDA device(s) are visible")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def join_process_group(device: torch.device) -> bool:
    """Join torchrun's process group, once ``device`` is chosen and current: NCCL for a CUDA
    device, bound to it (``device_id``), gloo otherwise. Returns whether this call created the
    group (whoever creates it destroys it); a group that exists already is left as it is."""
    if dist.is_initialized():
        return False
    if device.type == "cuda":
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return True


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_backends(device: torch.device, trainer) -> None:
    """cuDNN / cuBLAS settings for a run on ``device`` (``trainer``: the TrainerConfig).

    ``trainer.deterministic`` on CUDA: cuDNN picks deterministic kernels and no autotuning,
    torch's deterministic algorithms are on (warn-only: an op without a deterministic CUDA
    kernel warns, naming itself, rather than failing the run), and cuBLAS gets the fixed
    workspace it needs for reproducible matmuls. TF32 stays on either way (it is deterministic,
    only less precise than fp32), set through ``fp32_precision`` where torch has it (the
    ``allow_tf32`` flags are deprecated there, and torch refuses to read them once the new
    setting is used). On a CPU the kernels are deterministic already.
    """
    if device.type != "cuda":
        return
    deterministic = bool(trainer.deterministic)
    torch.backends.cudnn.benchmark = bool(trainer.cudnn_benchmark) and not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:  # torch before 2.9
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if deterministic:
        # Read when cuBLAS creates its handle: before the first matmul of this process.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def device_name(device: torch.device) -> str:
    """The card's name, or the CPU's model and the compute threads (for benchmark figures)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if
                  line.startswith("model name")), "cpu")
    return f"{model}, {torch.get_num_threads()} threads"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``trainer.precision`` as a dtype. ``auto``: bf16 on a CUDA device that computes in it
    natively (Ampere and later), fp16 (with a grad scaler) on an older card, where bf16 would
    only be emulated, and fp32 on a CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return (torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False)
                else torch.float16)
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a SLURM or container limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_cpu_threads(requested: int | None, world: int = 1) -> int:
    """Compute threads for training on a CPU.

    ``requested`` (trainer.cpu_threads) wins; else OMP_NUM_THREADS, if set (torchrun sets it
    to 1 for several processes); else this process's share of the available cores. The
    per-image loader's workers are not subtracted: on the 2-core dev machine, depthwise on the
    demo with the loader path and 2 workers trained at 174 / 157 img/s (two runs) with 2
    threads, 168 / 141 with 1 (results/benchmarks/README.md).
    """
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    return max(1, available_cores() // max(1, world))
