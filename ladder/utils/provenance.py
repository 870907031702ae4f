"""What decides whether a rerun is bit-identical, recorded in every ``result.json``
(``reproducibility``): the kernels that ran (the CPU's model and the instruction set torch
dispatched to, or the card with its CUDA and cuDNN), the compute threads, the libraries whose
arithmetic or pixels the run depends on, and the switches that change kernel choice.

Measured (docs/reproducibility.md): on the same CPU model and instruction set, with the same
libraries and threads, a seed reruns bit for bit, across commits and machines; on another
instruction set the same seed gives other numbers from the first step, within the seed noise.
"""
from __future__ import annotations

from typing import Any

import torch

from ladder.utils.runtime import device_name


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed
        return None


def reproducibility(device: torch.device) -> dict[str, Any]:
    """The facts that decide bit-identity of a run on ``device``."""
    out: dict[str, Any] = {
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "timm": _version("timm"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if device.type == "cuda":
        out.update({"cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version(),
                    "cudnn_benchmark": torch.backends.cudnn.benchmark,
                    "cudnn_deterministic": torch.backends.cudnn.deterministic,
                    "float32_matmul_precision": torch.get_float32_matmul_precision()})
    else:
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        out["mkldnn"] = torch.backends.mkldnn.is_available()
    return out


def same_kernels(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """Whether two runs' records promise bit-identical arithmetic: None when either run
    recorded none (older results)."""
    if not a or not b:
        return None
    return a == b
