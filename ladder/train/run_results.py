"""What a run tells the world: the banner, ``result.json`` (completed or failed), the W&B
summary, and the check that a run already completed."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ladder.data.loaders import Loaders
from ladder.ladders import rungs
from ladder.ladders.schema import TrainConfig
from ladder.nets.model import count_gmacs, count_params
from ladder.track.tracking import Tracker
from ladder.train.optim import Budget
from ladder.train.subject import Subject
from ladder.utils import checkpoint as ckpt
from ladder.utils.provenance import reproducibility
from ladder.utils.runtime import device_name, git_commit

RESULT_SCHEMA = "ladder.result/1"


def write_json(path: Path, data: dict) -> None:
    ckpt.atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


@dataclass(frozen=True)
class RunInfo:
    """Who a run is, known before it starts: its config, output folder, command line, sweep
    group and world size (what every result.json carries, completed or failed)."""

    cfg: TrainConfig
    out: Path
    command: str = ""
    sweep_group: str | None = None
    world: int = 1

    @property
    def result_path(self) -> Path:
        return Path(self.out) / "result.json"


@dataclass
class Trained:
    """What a completed run reports besides who it is: the trained model and the figures of its
    training (``t0``: when this segment started; ``wall_before``: earlier segments' wall time)."""

    subject: Subject
    model: nn.Module
    history: list[dict]
    params: int
    optimizer_steps: int
    train_images: int
    train_time_s: float
    data_identity: dict | None
    epochs: int
    pipeline: str
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    wandb_id: str | None
    t0: float
    wall_before: float

    def wall_time_s(self) -> float:
        return self.wall_before + (time.time() - self.t0)


def banner(run: RunInfo, subject: Subject, loaders: Loaders, data_identity: dict,
           budget: Budget, params: int, device: torch.device, dtype: torch.dtype) -> str:
    c, b = run.cfg, budget
    lines = [
        f"[ladder] {subject.describe}",
        f"[ladder] data {data_identity['id']} at {c.data.image_size}px from {loaders.source} "
        f"({len(loaders.classes)} classes, {loaders.train_size} train / "
        f"{loaders.val_size} val images; {loaders.pipeline} pipeline)"
        + (f"; held out: {loaders.split['holdout_images']} training images "
           f"(data.holdout={loaders.split['fraction']:g}, split seed {loaders.split['seed']})"
           if loaders.split else ""),
        (f"[ladder] width x{c.model.width_multiplier:g}, stem stride {c.model.stem_stride}, "
         if subject.rung else "[ladder] ")
        + f"{params / 1e6:.2f}M params; recipe {c.recipe.name}: {b.epochs} epochs "
        + (f"(budget x{c.trainer.budget:g}) " if c.trainer.budget != 1 else "")
        + f"(paper {c.recipe.epochs}), batch {b.global_batch} = {b.per_device_batch} x "
        f"{b.accum_steps} accum x {run.world} ranks, lr {b.lr:.3g}",
        f"[ladder] {device.type} {str(dtype).replace('torch.', '')}, output {run.out}",
    ]
    if c.experiment == "demo" and subject.rung:
        dirs = [d for d in rungs.search_path() if d != str(rungs.CONF_DIR.resolve())]
        select = "".join(f"--config-dir {d} " for d in dirs) + (
            f"ladder={c.ladder} " if c.ladder != rungs.DEFAULT_LADDER else "")
        lines.append("[ladder] this is the small demo; the real thing: python train.py "
                     f"{select}+rung={subject.rung} preset=imagenet data.root=/path/to/imagenet")
    return "\n".join(lines)


def epoch_line(row: dict, epoch: int, epochs: int) -> str:
    """The line printed after epoch ``epoch`` of ``epochs`` (``row``: its history row)."""
    return (f"[ladder] epoch {epoch}/{epochs} loss {row['train_loss']:.4f} "
            f"lr {row['lr']:.3g} top-1 {row['top1']:.2f} top-5 {row['top5']:.2f}"
            + (f" ema top-1 {row['ema_top1']:.2f}" if "ema_top1" in row else "")
            + f" | {row['img_per_s']:.0f} img/s")


def progress_bar(show: bool, total_batches: int, done: int, epoch: int, epochs: int):
    """A tqdm bar over the micro-batches of epoch ``epoch`` (0-based) of which ``done`` are
    done, when ``show`` (rank 0 with trainer.progress) and stderr is a terminal."""
    if not (show and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total_batches, initial=done, leave=False,
                desc=f"epoch {epoch + 1}/{epochs}", mininterval=1.0, dynamic_ncols=True)


def ladder_position(cfg) -> dict[str, Any]:
    """The run's ladder and the rung's place on it: ``ladder`` (its name), ``rung_index``
    (0-based, ladder order) and ``rung_label`` (``"05 width"``: sorts in ladder order), the
    last two ``None`` for a run without a rung (a timm backbone)."""
    if not cfg.rung:
        return {"ladder": cfg.ladder, "rung_index": None, "rung_label": None}
    ladder = rungs.load_ladder(cfg.ladder)
    i = ladder.index(cfg.rung)
    return {"ladder": ladder.name, "rung_index": i,
            "rung_label": f"{i:02d} {ladder.rungs[i].name}"}


def result_base(run: RunInfo, data_identity: dict | None = None,
                epochs: int | None = None) -> dict[str, Any]:
    """What every result.json holds: who the run is, its data's identity and its epochs (both
    ``None`` for a run that failed before its data was read)."""
    c = run.cfg
    rung = rungs.load_ladder(c.ladder).resolve(c.rung) if c.rung else None
    return {
        "schema": RESULT_SCHEMA, "rung": rung and rung.name, **ladder_position(c),
        "milestone": rung and rung.milestone, "backbone": c.backbone,
        "seed": c.seed, "experiment": c.experiment, "sweep_group": run.sweep_group,
        "dataset": c.data.name, "data": data_identity,
        "image_size": c.data.image_size, "budget": c.trainer.budget,
        "epochs": epochs,
        "recipe": c.recipe.name, "world_size": run.world,
        "git_commit": git_commit(), "command": run.command, "config": asdict(c),
        "output_dir": relative(run.out),
    }


def wandb_config(run: RunInfo) -> dict[str, Any]:
    """The W&B run's config: the run's config (``result_base``'s ``config``) plus its ladder
    and the rung's place on it (``ladder``, ``rung_index``, ``rung_label``), as in result.json."""
    base = result_base(run)
    return {**base["config"], **{k: base[k] for k in ("ladder", "rung_index", "rung_label")}}


def finish(run: RunInfo, trained: Trained, tracker: Tracker, is_main: bool) -> dict[str, Any]:
    """The completed run's result: written to result.json and the W&B summary by rank 0."""
    history = trained.history
    last = history[-1]
    best = max(history, key=lambda r: r["top1"])
    metrics = {"top1": last["top1"], "top5": last["top5"], "best_top1": best["top1"],
               "best_top5": max(r["top5"] for r in history),
               "ema_top1": last.get("ema_top1"), "train_loss": last["train_loss"],
               "val_loss": last["val_loss"]}
    if "holdout_top1" in last:  # data.holdout: scored on the held-out training images
        metrics["holdout_top1"] = last["holdout_top1"]
    result = result_base(run, trained.data_identity, trained.epochs)
    paper, paper_px = trained.subject.reference()
    result.update({
        "status": "completed", "error": None, "metrics": metrics, "history": history,
        "params": count_params(paper), "gflops": round(count_gmacs(paper, paper_px), 4),
        "trained_params": trained.params, "optimizer_steps": trained.optimizer_steps,
        "trained_gflops": round(count_gmacs(trained.model, run.cfg.data.image_size), 6),
        "train_img_per_s": trained.train_images / max(1e-9, trained.train_time_s),
        "data_pipeline": trained.pipeline,
        "device": device_name(trained.device),  # the card, or the CPU and its compute threads
        "reproducibility": reproducibility(trained.device),  # what decides bit-identity
        "wall_time_s": trained.wall_time_s(),
        "wandb_run_id": trained.wandb_id,
    })
    if run.cfg.trainer.measure_latency:
        from ladder.train.latency import measure_latency

        result["latency_ms"] = measure_latency(trained.model, run.cfg.data.image_size,
                                               trained.device, trained.dtype,
                                               channels_last=trained.channels_last)
        result["latency_device"] = device_name(trained.device)
    if is_main:
        write_json(run.result_path, result)
        tracker.summary({**{k: v for k, v in metrics.items() if v is not None},
                         "params": result["params"], "gflops": result["gflops"],
                         "train_img_per_s": result["train_img_per_s"],
                         "wall_time_s": result["wall_time_s"]})
        print(f"[ladder] done: top-1 {metrics['top1']:.2f} (best {metrics['best_top1']:.2f}) "
              f"in {result['wall_time_s']:.0f}s; result: {run.result_path}", flush=True)
    return result


def fail(run: RunInfo, err: BaseException, history: list[dict], tracker: Tracker,
         is_main: bool, data_identity: dict | None = None, epochs: int | None = None) -> None:
    """Record a failed run in result.json (rank 0) and close the tracker."""
    if is_main:
        result = result_base(run, data_identity, epochs)
        result.update({"status": "failed", "error": f"{type(err).__name__}: {err}",
                       "metrics": None, "history": history})
        try:
            write_json(run.result_path, result)
        except ckpt.CheckpointError as write_err:
            print(f"[ladder] {write_err}", file=sys.stderr)
    tracker.finish(exit_code=1)


def relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (committed results
    must not hold this machine's absolute paths), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def completed_result(output_dir: Path) -> dict | None:
    """The result of a run that already completed in ``output_dir``, if any."""
    path = Path(output_dir) / "result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("status") == "completed" else None
