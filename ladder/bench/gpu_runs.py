"""The single-process steps of scripts/gpu_check.sh and scripts/gpu_ladder.sh (the subcommands
train, versions, cache and bench of scripts/gpu_steps.py): one train.py run checked against
expectations, the software and device, the data decoded into the cache once, and
:mod:`.benchmark`. Also the trainer's log lines they read, which the concurrency rounds
(:mod:`.gpu_rounds`) read too. torch is imported only inside the subcommands that need it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from ladder.bench.gpu_summary import read_json, write_json_atomic

REPO = Path(__file__).resolve().parents[2]  # the checkout: train.py, conf/

# The trainer's lines (ladder/train/trainer.py) the steps read.
BANNER_DATA = re.compile(r"^\[ladder\] data .*?(\d+) train / (\d+) val images; (\w+) pipeline\)")
BANNER_BATCH = re.compile(r"batch (\d+) = (\d+) x (\d+) accum x (\d+) ranks")
BANNER_LAST = re.compile(r"^\[ladder\] \w+ \w+, output ")  # the last banner line: training starts
EPOCH = re.compile(r"^\[ladder\] epoch (\d+)/(\d+) loss (\S+) lr \S+ top-1 ([\d.]+) "
                   r".*\| ([\d.]+) img/s")
RESUMED = re.compile(r"^\[ladder\] resumed from (\S+) at epoch (\d+), step (\d+)")
STOPPED = re.compile(r"^\[ladder\] stopped by signal (\d+)")
DONE = re.compile(r"^\[ladder\] done: top-1 ([\d.]+)")


# ----------------------------------------------------------------------------- train
class Term:
    """SIGTERM sets a flag: the step's timeout signals the whole process group, so the
    trainer child checkpoints and stops by itself; this process reads on to its end and still
    writes what it measured."""

    def __init__(self):
        self.seen = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.seen = True


def parse_train_log(lines: list[str]) -> dict:
    out: dict = {}
    epochs = []
    for line in lines:
        if m := BANNER_DATA.match(line):
            out.update({"train_images": int(m[1]), "val_images": int(m[2]), "pipeline": m[3]})
        if m := BANNER_BATCH.search(line):
            out["batch"] = int(m[1])
        if m := EPOCH.match(line):
            epochs.append({"epoch": int(m[1]), "top1": float(m[4]), "img_per_s": float(m[5])})
        if m := RESUMED.match(line):
            out.update({"resumed": True, "resumed_epoch": int(m[2]), "resumed_step": int(m[3])})
        if m := STOPPED.match(line):
            out["stopped_by_signal"] = int(m[1])
        if m := DONE.match(line):
            out["done_top1"] = float(m[1])
    if epochs:
        out.update({"epochs_logged": len(epochs), "last_epoch_top1": epochs[-1]["top1"],
                    "last_epoch_img_per_s": epochs[-1]["img_per_s"]})
    return out


def result_numbers(run_dir: Path) -> dict:
    data = read_json(Path(run_dir) / "result.json")
    if not data:
        return {}
    cfg = data.get("config") or {}
    return {"status": data.get("status"), "top1": (data.get("metrics") or {}).get("top1"),
            "train_img_per_s": data.get("train_img_per_s"),
            "data_pipeline": data.get("data_pipeline"),
            "randaugment": (cfg.get("recipe") or {}).get("randaugment"),
            "precision": (cfg.get("trainer") or {}).get("precision"),
            "run_device": data.get("device"), "epochs": data.get("epochs"),
            "error": data.get("error")}


def cmd_train(a) -> int:
    """One train.py run into --run-dir, its output passed through; exit 0 when its exit code
    is one of --expect-rc and every --expect pattern was printed, else 1."""
    term = Term()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LADDER_FAULT_SIGTERM_AT_STEP", None)
    if a.sigterm_at_step:
        env["LADDER_FAULT_SIGTERM_AT_STEP"] = str(a.sigterm_at_step)  # ladder/train/trainer.py's hook
    cmd = [sys.executable, str(REPO / "train.py"), *a.overrides, f"hydra.run.dir={a.run_dir}"]
    print("+ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO, stdin=subprocess.DEVNULL)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    rc = proc.wait()
    numbers = {"train_rc": rc, "seconds": round(time.monotonic() - t0, 1),
               **parse_train_log(lines), **result_numbers(Path(a.run_dir))}
    problems = []
    if rc not in a.expect_rc:
        problems.append(f"train.py exited {rc}, expected {' or '.join(map(str, a.expect_rc))}")
    for pattern in a.expect or []:
        if not any(re.search(pattern, line) for line in lines):
            problems.append(f"no line matched {pattern!r}")
    result = read_json(Path(a.run_dir) / "result.json") or {}
    for item in a.expect_result or []:
        key, _, want = item.partition("=")
        value = result
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if str(value) != want:
            problems.append(f"result.json {key} is {value!r}, expected {want!r}")
    if term.seen:
        problems.append("stopped by the step's time limit")
    numbers["checks"] = "ok" if not problems else "; ".join(problems)
    if a.numbers:
        write_json_atomic(Path(a.numbers), numbers)
    print(f"[check] {numbers['checks']}", flush=True)
    return 0 if not problems else 1


# ----------------------------------------------------------------------------- versions
def cmd_versions(a) -> int:
    import platform

    info = {"python": platform.python_version()}
    for module in ("torch", "torchvision", "timm", "kornia", "hydra", "omegaconf"):
        try:
            info[module] = __import__(module).__version__
        except Exception as err:  # report, don't stop: the next steps say what breaks
            info[module] = f"missing ({type(err).__name__})"
    import torch

    info["cuda"] = torch.cuda.is_available()
    info["cpu_count"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update({"device": torch.cuda.get_device_name(0),
                     "device_count": torch.cuda.device_count(),
                     "gpu_mem_gib": round(props.total_memory / 2**30, 1),
                     "cuda_version": torch.version.cuda, "bf16": torch.cuda.is_bf16_supported()})
    else:
        info["device"] = f"cpu ({platform.processor() or platform.machine()})"
    print(" ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    if a.json:
        write_json_atomic(Path(a.json), info)
    return 0 if info["cuda"] or a.allow_cpu else 1


# ----------------------------------------------------------------------------- cache
def cmd_cache(a) -> int:
    """Decode the data into the tensor cache once, before concurrent jobs start (they would
    each decode it): one rung of each recipe, whose interpolations give both tensor files."""
    from omegaconf import OmegaConf

    from ladder.data.loaders import build_loaders
    from ladder.ladders.compose import compose_config

    for rung in a.rungs.split(","):
        cfg = OmegaConf.to_object(compose_config(rung, a.overrides))
        loaders = build_loaders(cfg.data, cfg.recipe, 8, 1, 0)
        print(f"[cache] {rung}: {loaders.train_size} train / {loaders.val_size} val images from "
              f"{loaders.source} ({loaders.pipeline} pipeline)", flush=True)
    return 0


# ----------------------------------------------------------------------------- bench
def cmd_bench(a) -> int:
    """ladder/bench/benchmark.py; --compile-backend swaps torch.compile's backend (CPU checks:
    'eager' traces with dynamo but skips inductor's C++ build, minutes on a small CPU)."""
    if a.compile_backend:
        import functools

        import torch

        torch.compile = functools.partial(torch.compile, backend=a.compile_backend)
    from ladder.bench.benchmark import main

    main(a.args)
    return 0
