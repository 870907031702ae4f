"""What a run tells the world: the banner, ``result.json`` (completed or failed), the W&B
summary, and the check that a run already completed."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladder.utils import checkpoint as ckpt
from ladder.ladders import rungs
from ladder.nets.model import count_gmacs, count_params
from ladder.utils.runtime import device_name, git_commit

if TYPE_CHECKING:
    from ladder.train.trainer import Trainer

RESULT_SCHEMA = "ladder.result/1"


def write_json(path: Path, data: dict) -> None:
    ckpt.atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def banner(t: Trainer) -> str:
    c, b = t.cfg, t.budget
    lines = [
        f"[ladder] {t.subject.describe}",
        f"[ladder] data {t.data_identity['id']} at {c.data.image_size}px from {t.loaders.source} "
        f"({len(t.loaders.classes)} classes, {t.loaders.train_size} train / "
        f"{t.loaders.val_size} val images; {t.loaders.pipeline} pipeline)",
        (f"[ladder] width x{c.model.width_multiplier:g}, stem stride {c.model.stem_stride}, "
         if t.subject.rung else "[ladder] ")
        + f"{t.params / 1e6:.2f}M params; recipe {c.recipe.name}: {b.epochs} epochs "
        + (f"(budget x{c.trainer.budget:g}) " if c.trainer.budget != 1 else "")
        + f"(paper {c.recipe.epochs}), batch {b.global_batch} = {b.per_device_batch} x "
        f"{b.accum_steps} accum x {t.world} ranks, lr {b.lr:.3g}",
        f"[ladder] {t.device.type} {str(t.dtype).replace('torch.', '')}, output {t.out}",
    ]
    if c.experiment == "demo" and t.subject.rung:
        dirs = [d for d in rungs.search_path() if d != str(rungs.CONF_DIR.resolve())]
        select = "".join(f"--config-dir {d} " for d in dirs) + (
            f"ladder={c.ladder} " if c.ladder != rungs.DEFAULT_LADDER else "")
        lines.append("[ladder] this is the small demo; the real thing: python train.py "
                     f"{select}+rung={t.subject.rung} preset=imagenet data.root=/path/to/imagenet")
    return "\n".join(lines)


def epoch_line(t: Trainer, row: dict) -> str:
    return (f"[ladder] epoch {t.epoch}/{t.budget.epochs} loss {row['train_loss']:.4f} "
            f"lr {row['lr']:.3g} top-1 {row['top1']:.2f} top-5 {row['top5']:.2f}"
            + (f" ema top-1 {row['ema_top1']:.2f}" if "ema_top1" in row else "")
            + f" | {row['img_per_s']:.0f} img/s")


def progress_bar(t: Trainer, total_batches: int):
    """A tqdm bar over the epoch's micro-batches, on rank 0 at a terminal only."""
    if not (t.is_main and t.cfg.trainer.progress and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total_batches, initial=t.batch_in_epoch, leave=False,
                desc=f"epoch {t.epoch + 1}/{t.budget.epochs}", mininterval=1.0, dynamic_ncols=True)


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


def result_base(t: Trainer) -> dict[str, Any]:
    c = t.cfg
    rung = rungs.load_ladder(c.ladder).resolve(c.rung) if c.rung else None
    return {
        "schema": RESULT_SCHEMA, "rung": rung and rung.name, **ladder_position(c),
        "milestone": rung and rung.milestone, "backbone": c.backbone,
        "seed": c.seed, "experiment": c.experiment, "sweep_group": t.sweep_group,
        "dataset": c.data.name, "data": getattr(t, "data_identity", None),
        "image_size": c.data.image_size, "budget": c.trainer.budget,
        "epochs": getattr(t, "budget", None) and t.budget.epochs,
        "recipe": c.recipe.name, "world_size": t.world,
        "git_commit": git_commit(), "command": t.command, "config": asdict(c),
        "output_dir": relative(t.out),
    }


def wandb_config(t: Trainer) -> dict[str, Any]:
    """The W&B run's config: the run's config (``result_base``'s ``config``) plus its ladder
    and the rung's place on it (``ladder``, ``rung_index``, ``rung_label``), as in result.json."""
    base = result_base(t)
    return {**base["config"], **{k: base[k] for k in ("ladder", "rung_index", "rung_label")}}


def finish(t: Trainer) -> dict[str, Any]:
    """The completed run's result: written to result.json and the W&B summary by rank 0."""
    last = t.history[-1]
    best = max(t.history, key=lambda r: r["top1"])
    metrics = {"top1": last["top1"], "top5": last["top5"], "best_top1": best["top1"],
               "best_top5": max(r["top5"] for r in t.history),
               "ema_top1": last.get("ema_top1"), "train_loss": last["train_loss"],
               "val_loss": last["val_loss"]}
    result = result_base(t)
    paper, paper_px = t.subject.reference()
    result.update({
        "status": "completed", "error": None, "metrics": metrics, "history": t.history,
        "params": count_params(paper), "gflops": round(count_gmacs(paper, paper_px), 4),
        "trained_params": t.params, "optimizer_steps": t.step,
        "trained_gflops": round(count_gmacs(t.model, t.cfg.data.image_size), 6),
        "train_img_per_s": t.train_images / max(1e-9, t.train_time),
        "data_pipeline": t.loaders.pipeline,
        "device": device_name(t.device),  # the card, or the CPU and its compute threads
        "wall_time_s": t.wall_before + (time.time() - t.t0),
        "wandb_run_id": t.wandb_id,
    })
    if t.cfg.trainer.measure_latency:
        from ladder.train.latency import measure_latency

        result["latency_ms"] = measure_latency(t.model, t.cfg.data.image_size, t.device, t.dtype,
                                               channels_last=t.channels_last)
        result["latency_device"] = device_name(t.device)
    if t.is_main:
        write_json(t.result_path, result)
        t.tracker.summary({**{k: v for k, v in metrics.items() if v is not None},
                           "params": result["params"], "gflops": result["gflops"],
                           "train_img_per_s": result["train_img_per_s"],
                           "wall_time_s": result["wall_time_s"]})
        print(f"[ladder] done: top-1 {metrics['top1']:.2f} (best {metrics['best_top1']:.2f}) "
              f"in {result['wall_time_s']:.0f}s; result: {t.result_path}", flush=True)
    return result


def fail(t: Trainer, err: BaseException) -> None:
    """Record a failed run in result.json (rank 0) and close the tracker."""
    if t.is_main:
        result = result_base(t)
        result.update({"status": "failed", "error": f"{type(err).__name__}: {err}",
                       "metrics": None, "history": t.history})
        try:
            write_json(t.result_path, result)
        except ckpt.CheckpointError as write_err:
            print(f"[ladder] {write_err}", file=sys.stderr)
    t.tracker.finish(exit_code=1)


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
