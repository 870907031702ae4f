"""Training throughput of ladder rungs against the reference models, measured in the same run.

    python scripts/benchmark.py                                  # resnet50 and micro, 224 px
    python scripts/benchmark.py --rungs resnet50,width,micro --batch 128 --compile
    python scripts/benchmark.py --json results/bench.json

For each rung: img/s of a full training step (forward, backward, AdamW step) on random data at
the paper's scale (1000 classes, full width), and the peak GPU memory of its steps. The two ends
are also timed as their reference implementations (torchvision's resnet50, timm's convnext_tiny)
with the same settings and the same stochastic depth, the two models taking turns in
``--repeats`` rounds (medians), and the ratios are printed: speed = ladder img/s / reference
img/s, time = ladder step time / reference step time. Both should be close to 1, since the
networks are the same. Peak memory is measured per model (``peak_mem_gib``,
``reference_peak_mem_gib``), each over its own warmup steps. The backend settings are the
trainer's (:func:`ladder.utils.runtime.configure_backends` with the default trainer config:
cuDNN autotuning and TF32 on CUDA), so the kernels timed are the ones training runs.
Speed claims come from these ratios, never from timed tests. On a shared CPU machine,
``OMP_NUM_THREADS=1 ... --clock cpu`` times the process's own CPU time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ladder.ladders import rungs
from ladder.ladders.compose import rung_net_config
from ladder.ladders.schema import TrainerConfig
from ladder.nets.model import LadderNet
from ladder.utils.runtime import available_cores, configure_backends, device_name

# The reference implementation each end of the ladder is equal to (tests/test_ladder.py).
REFERENCES = {"resnet50": "torchvision.resnet50", "recipe": "torchvision.resnet50",
              "separate_downsampling": "timm.convnext_tiny"}


def backend_settings() -> dict:
    """cuDNN autotuning and TF32 for matmuls as they stand (``fp32_precision`` where torch has
    it: it refuses to read the older ``allow_tf32`` once the newer setting was used)."""
    matmul = torch.backends.cuda.matmul
    tf32 = (matmul.fp32_precision == "tf32" if hasattr(matmul, "fp32_precision")
            else bool(matmul.allow_tf32))
    return {"cudnn_benchmark": bool(torch.backends.cudnn.benchmark), "tf32": tf32}


def build_reference(name: str, drop_path_rate: float = 0.0) -> nn.Module:
    """The reference model, with the rung's stochastic depth (timm's default is none) so that
    both sides of a ratio do the same work."""
    if name == "torchvision.resnet50":
        import torchvision

        return torchvision.models.resnet50()
    import timm

    return timm.create_model("convnext_tiny", drop_path_rate=drop_path_rate)


def make_stepper(model: nn.Module, *, batch: int, size: int, device: torch.device,
                 dtype: torch.dtype, channels_last: bool, compile: bool,
                 clock: str = "wall") -> Callable[[int], float]:
    """A function that runs ``n`` full training steps (forward, backward, AdamW) on one random
    batch and returns the seconds per step, by the wall clock or the process's CPU time."""
    model = model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_module = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()
    timer = time.process_time if clock == "cpu" else time.perf_counter
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def run(n: int) -> float:
        sync()
        start = timer()
        for _ in range(n):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                loss = loss_fn(step_module(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        sync()
        return (timer() - start) / n

    return run


class PeakMemory:
    """Peak device memory of one model's training steps: the allocator's peak since ``start``
    minus what was allocated at ``start`` (the other model, if alive), so each model of a pair
    is measured alone. ``None`` off CUDA."""

    def __init__(self, device: torch.device):
        self.device, self.base = device, 0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> float | None:
        if self.device.type != "cuda":
            return None
        torch.cuda.synchronize(self.device)
        return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**30


def time_pair(ours: nn.Module, reference: nn.Module | None, *, steps: int, warmup: int,
              repeats: int, memory: PeakMemory | None = None, **settings) -> dict:
    """Median seconds per step of ``ours`` (and ``reference``) over ``repeats`` rounds of
    ``steps`` steps, the two models taking turns (the order alternates each round), so a busy
    moment of a shared machine hits both alike. Peak memory is read per model over its warmup
    steps (at least one: the first steps, where the optimizer state is created), from before it
    is moved to the device, with the memory already allocated then (the other model) not
    counted."""
    memory = memory or PeakMemory(settings["device"])
    memory.start()
    run_ours = make_stepper(ours, **settings)
    run_ours(max(warmup, 1))
    peak_ours = memory.read()
    run_ref = peak_ref = None
    if reference is not None:
        memory.start()
        run_ref = make_stepper(reference, **settings)
        run_ref(max(warmup, 1))
        peak_ref = memory.read()
    t_ours, t_ref = [], []
    for r in range(repeats):
        order = [(run_ours, t_ours), (run_ref, t_ref)]
        for fn, times in (order if r % 2 == 0 else order[::-1]):
            if fn is not None:
                times.append(fn(steps))
    batch = settings["batch"]
    row = {"img_per_s": batch / statistics.median(t_ours), "peak_mem_gib": peak_ours,
           "step_s": t_ours}
    if t_ref:
        row.update({"reference_img_per_s": batch / statistics.median(t_ref), "reference_step_s": t_ref,
                    "reference_peak_mem_gib": peak_ref,
                    "time_ratio": statistics.median(t_ours) / statistics.median(t_ref)})
    return row


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python scripts/benchmark.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rungs", default=None,
                   help="comma-separated rung or milestone names (default: the two ends; "
                        "with --trainer: depthwise)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5,
                   help="rounds of --steps steps, ladder and reference taking turns; medians")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: the process's CPU time (steadier on a shared CPU machine; use one "
                        "thread, OMP_NUM_THREADS=1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--no-reference", action="store_true", help="skip the reference models")
    p.add_argument("--json", help="also write the rows (and the machine) to this file")
    p.add_argument("--trainer", metavar="PRESET",
                   help="instead: the trainer's end-to-end img/s on PRESET against the pure "
                        "training step of the same model and batch (ladder/bench/pipeline_bench.py)")
    p.add_argument("--pipelines", default="device,loader", help="with --trainer: data.pipeline values")
    p.add_argument("--epochs", type=int, default=2, help="with --trainer: epochs; the last is timed")
    p.add_argument("--override", action="append", help="with --trainer: a Hydra override (repeatable)")
    args = p.parse_args(argv)
    if args.trainer:
        from ladder.bench import pipeline_bench

        args.rungs = args.rungs or "depthwise"
        rows = pipeline_bench.run(args)
        if args.json:
            out = {"device": device_name(torch.device("cuda" if torch.cuda.is_available()
                                                     else "cpu")), "torch": torch.__version__,
                   "cpu_count": available_cores(), "rows": rows}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        return rows
    args.rungs = args.rungs or "resnet50,separate_downsampling"

    try:
        names = [rungs.resolve(n.strip()).name for n in args.rungs.split(",") if n.strip()]
    except ValueError as err:
        p.error(str(err))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    configure_backends(device, TrainerConfig())  # as the trainer: cuDNN autotuning, TF32
    backends = backend_settings()
    settings = dict(batch=args.batch, size=args.size, device=device, dtype=dtype,
                    channels_last=not args.no_channels_last, compile=args.compile,
                    clock=args.clock)
    rows = []
    for name in names:
        config = rung_net_config(name)
        torch.manual_seed(0)
        ours = LadderNet(config)
        ref = REFERENCES.get(name) if not args.no_reference else None
        torch.manual_seed(0)
        reference = build_reference(ref, config.drop_path_rate) if ref else None
        row = {"rung": name, **time_pair(ours, reference, steps=args.steps, warmup=args.warmup,
                                         repeats=args.repeats, **settings)}
        if ref:
            row.update({"reference": ref,
                        "ratio": row["img_per_s"] / row["reference_img_per_s"]})
        rows.append(row)

    card = device_name(device)
    print(f"training throughput, {card}, {precision}, batch {args.batch}, {args.size} px, "
          f"channels_last={not args.no_channels_last}, compile={args.compile}, {args.clock} clock, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} x {args.steps} steps"
          + (f", cudnn.benchmark={backends['cudnn_benchmark']}, tf32={backends['tf32']}"
             if device.type == "cuda" else ""))
    print(f"{'rung':<24} {'img/s':>9} {'peak GiB':>9}  {'reference':<22} {'ref img/s':>9} "
          f"{'ref GiB':>8} {'speed':>6} {'time':>6}")
    gib = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
    for r in rows:
        ref = (f"{r['reference']:<22} {r['reference_img_per_s']:>9.1f} "
               f"{gib(r['reference_peak_mem_gib']):>8} {r['ratio']:>6.3f} {r['time_ratio']:>6.3f}"
               if "ratio" in r else f"{'-':<22} {'-':>9} {'-':>8} {'-':>6} {'-':>6}")
        print(f"{r['rung']:<24} {r['img_per_s']:>9.1f} {gib(r['peak_mem_gib']):>9}  {ref}")
    if args.json:
        out = {"device": card, "precision": precision, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "backends": backends,
               "settings": {**{k: str(v) for k, v in settings.items()}, "steps": args.steps,
                            "warmup": args.warmup, "repeats": args.repeats},
               "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
