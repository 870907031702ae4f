"""Training throughput of ladder rungs against the reference models, measured in the same run.

    python scripts/benchmark.py                                  # resnet50 and micro, 224 px
    python scripts/benchmark.py --rungs resnet50,width,micro --batch 128 --compile
    python scripts/benchmark.py --json results/bench.json

For each rung: img/s of a full training step (forward, backward, AdamW step) on random data at
the paper's scale (1000 classes, full width), and peak GPU memory. The two ends are also timed
as their reference implementations (torchvision's resnet50, timm's convnext_tiny) with the same
settings, and the ratio ladder / reference is printed: it should be close to 1, since the
networks are the same. Speed claims come from these ratios, never from timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from ladder import rungs
from ladder.compose import rung_net_config
from ladder.model import LadderNet

# The reference implementation each end of the ladder is equal to (tests/test_ladder.py).
REFERENCES = {"resnet50": "torchvision.resnet50", "recipe": "torchvision.resnet50",
              "separate_downsampling": "timm.convnext_tiny"}


def build_reference(name: str) -> nn.Module:
    if name == "torchvision.resnet50":
        import torchvision

        return torchvision.models.resnet50()
    import timm

    return timm.create_model("convnext_tiny")


def time_training(model: nn.Module, *, batch: int, size: int, steps: int, warmup: int,
                  device: torch.device, dtype: torch.dtype, channels_last: bool,
                  compile: bool) -> dict:
    """img/s over ``steps`` timed training steps after ``warmup`` untimed ones."""
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
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def one_step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = loss_fn(step_module(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"img_per_s": batch * steps / seconds, "peak_mem_gib": peak}


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
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--no-reference", action="store_true", help="skip the reference models")
    p.add_argument("--json", help="also write the rows (and the machine) to this file")
    p.add_argument("--trainer", metavar="PRESET",
                   help="instead: the trainer's end-to-end img/s on PRESET against the pure "
                        "training step of the same model and batch (ladder/pipeline_bench.py)")
    p.add_argument("--pipelines", default="device,loader", help="with --trainer: data.pipeline values")
    p.add_argument("--epochs", type=int, default=2, help="with --trainer: epochs; the last is timed")
    p.add_argument("--override", action="append", help="with --trainer: a Hydra override (repeatable)")
    args = p.parse_args(argv)
    if args.trainer:
        from ladder import pipeline_bench

        args.rungs = args.rungs or "depthwise"
        rows = pipeline_bench.run(args)
        if args.json:
            out = {"device": platform.processor() or "cpu", "torch": torch.__version__,
                   "cpu_count": os.cpu_count(), "rows": rows}
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
    settings = dict(batch=args.batch, size=args.size, steps=args.steps, warmup=args.warmup,
                    device=device, dtype=dtype, channels_last=not args.no_channels_last,
                    compile=args.compile)
    rows = []
    for name in names:
        torch.manual_seed(0)
        row = {"rung": name, **time_training(LadderNet(rung_net_config(name)), **settings)}
        ref = REFERENCES.get(name)
        if ref and not args.no_reference:
            torch.manual_seed(0)
            measured = time_training(build_reference(ref), **settings)
            row.update({"reference": ref, "reference_img_per_s": measured["img_per_s"],
                        "ratio": row["img_per_s"] / measured["img_per_s"]})
        rows.append(row)

    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"training throughput, {card}, {precision}, batch {args.batch}, {args.size} px, "
          f"channels_last={not args.no_channels_last}, compile={args.compile}, {args.steps} steps")
    print(f"{'rung':<24} {'img/s':>9} {'peak GiB':>9}  {'reference':<22} {'ref img/s':>9} {'ratio':>6}")
    for r in rows:
        mem = f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] is not None else "-"
        ref = (f"{r['reference']:<22} {r['reference_img_per_s']:>9.1f} {r['ratio']:>6.2f}"
               if "ratio" in r else f"{'-':<22} {'-':>9} {'-':>6}")
        print(f"{r['rung']:<24} {r['img_per_s']:>9.1f} {mem:>9}  {ref}")
    if args.json:
        out = {"device": card, "precision": precision, "torch": torch.__version__,
               "settings": {k: str(v) for k, v in settings.items()}, "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
