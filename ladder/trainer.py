"""The trainer: one code path for fp32 / bf16 / fp16, CPU / one GPU / torchrun.

``train(cfg, output_dir=...)`` trains and evaluates one rung and writes ``result.json`` (and a
W&B run). Every epoch end (and every ``trainer.checkpoint_every_steps`` optimizer steps) it
writes ``checkpoints/last.pt`` atomically; rerunning in the same output dir resumes from it.
Nothing here imports Hydra.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from ladder import checkpoint as ckpt
from ladder import rungs
from ladder.data import Loaders, build_loaders
from ladder.model import count_gmacs, count_params
from ladder.optim import Budget, build_optimizer, lr_at, make_budget
from ladder.runtime import (choose_cpu_threads, device_name, dist_info, git_commit, pick_device,
                            pick_dtype)
from ladder.schema import TrainConfig
from ladder.subject import subject_of
from ladder.tracking import Tracker, create_tracker

RESULT_SCHEMA = "ladder.result/1"
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again"; the checkpoint is written, requeue me


class NonFiniteLoss(RuntimeError):
    pass


class Preempted(Exception):
    """Raised after a checkpoint was written on SIGTERM / SIGUSR1 (``signum``)."""

    def __init__(self, signum: int | None = None):
        super().__init__(signum)
        self.signum = signum


def write_json(path: Path, data: dict) -> None:
    ckpt.atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


class StopFlag:
    """SIGTERM / SIGUSR1 set a flag; the loop checkpoints at the next step boundary and exits."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._handle)
                # Restart interrupted system calls: a signal landing inside a gloo collective
                # or a data-loader read must only set the flag, not fail the call (EINTR).
                signal.siginterrupt(sig, False)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ----------------------------------------------------------------------------- the run
class Trainer:
    def __init__(self, cfg: TrainConfig, output_dir: Path, command: str = "",
                 sweep_group: str | None = None, tags: list[str] | None = None):
        self.cfg = cfg
        self.out = Path(output_dir)
        self.command = command
        self.sweep_group = sweep_group
        self.tags = tags or []
        self.rank, self.local_rank, self.world = dist_info()
        self.is_main = self.rank == 0
        self.subject = None  # the rung or the timm backbone, built in setup()
        self.ckpt_path = self.out / "checkpoints" / "last.pt"
        self.result_path = self.out / "result.json"
        self.tracker: Tracker = Tracker()
        self.stop = StopFlag()
        self.history: list[dict] = []
        # Fault injection for the fault tests (tests/test_faults.py): die (SIGKILL) or be asked
        # to stop (SIGTERM) right after a given optimizer step.
        self.fault_kill_at = int(os.environ.get("LADDER_FAULT_KILL_AT_STEP", -1))
        self.fault_term_at = int(os.environ.get("LADDER_FAULT_SIGTERM_AT_STEP", -1))

    # -- setup ---------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and cfg.trainer.device != "cpu" else "gloo"
            dist.init_process_group(backend)
        self.subject = subject_of(cfg)
        self.device = pick_device(cfg.trainer.device, self.local_rank)
        self.dtype = pick_dtype(cfg.trainer.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = cfg.trainer.cudnn_benchmark and not cfg.trainer.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(cfg.seed + self.rank)
        np.random.seed((cfg.seed + self.rank) % 2**32)
        self.budget: Budget = make_budget(cfg.recipe, cfg.trainer, self.world)
        self.loaders: Loaders = build_loaders(
            cfg.data, cfg.recipe, self.budget.per_device_batch, self.budget.accum_steps, cfg.seed,
            self.rank, self.world, pin_memory=self.device.type == "cuda", device=self.device,
            log=lambda msg: print(msg, flush=True))
        self.steps_per_epoch = self.loaders.train_sampler.per_rank // (
            self.budget.per_device_batch * self.budget.accum_steps)
        if cfg.trainer.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.trainer.max_steps_per_epoch)

        if self.device.type == "cpu":
            torch.set_num_threads(choose_cpu_threads(
                cfg.trainer.cpu_threads, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
        self.model = self.subject.build().to(self.device)
        if cfg.trainer.sync_batchnorm and self.world > 1 and self.subject.has_batchnorm:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        # oneDNN in torch 2.14 corrupts memory (double free) in the backward pass of some small
        # channels_last conv nets on a CPU with one compute thread (the inverted_bottleneck rung at
        # width x0.0625): there, train contiguous.
        self.channels_last = cfg.trainer.channels_last and not (
            self.device.type == "cpu" and torch.get_num_threads() == 1)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg.recipe, self.budget.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.ema = None
        if cfg.recipe.ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=cfg.recipe.ema_decay)
        # The module we step: DDP-wrapped and/or compiled. self.model stays the plain module,
        # which is what checkpoints hold.
        module: nn.Module = self.model
        if self.world > 1:
            module = nn.parallel.DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.train_module = torch.compile(module) if cfg.trainer.compile else module

        r = cfg.recipe
        self.mixup = None
        if r.mixup > 0 or r.cutmix > 0:
            from timm.data import Mixup
            from timm.loss import SoftTargetCrossEntropy

            self.mixup = Mixup(mixup_alpha=r.mixup, cutmix_alpha=r.cutmix,
                               switch_prob=r.mixup_switch_prob, label_smoothing=r.label_smoothing,
                               num_classes=cfg.model.num_classes)
            self.criterion = SoftTargetCrossEntropy()
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)

        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.batch_in_epoch = 0  # micro-batches consumed in the current epoch
        self.epoch_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        self.epoch_seen = 0
        self.wandb_id: str | None = None
        self.wall_before = 0.0  # wall time of earlier (pre-resume) segments
        self.train_time = 0.0
        self.train_images = 0

    # -- checkpoints -------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": 1,
            "rung": self.subject.name,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_loss": self.epoch_loss.cpu(),
            "epoch_seen": self.epoch_seen,
            "history": json.dumps(self.history),
            "rng": ckpt.rng_state(),
            "wandb_id": self.wandb_id,
            "wall_time_s": self.wall_before + (time.time() - self.t0),
            "train_time_s": self.train_time,
            "train_images": self.train_images,
        }

    def save_checkpoint(self) -> None:
        """Rank 0 writes; everybody waits so no rank runs ahead of a checkpoint."""
        if self.world > 1:  # rank 0, the writer, gathers every rank's running loss sums
            self.global_epoch_loss()
        if self.is_main:
            ckpt.save(self.state(), self.ckpt_path)
        if self.world > 1:
            dist.barrier()

    def load_checkpoint(self, path: Path) -> Path:
        """Restore everything from ``path`` (or the previous checkpoint if it is corrupt)."""
        state, path = ckpt.load_latest(
            path, map_location=self.device,
            warn=lambda msg: print(msg, file=sys.stderr, flush=True) if self.is_main else None)
        if state.get("rung") != self.subject.name:
            raise ckpt.CheckpointError(f"checkpoint {path} belongs to {state.get('rung')!r}, "
                                       f"not {self.subject.name!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self.epoch_loss = state["epoch_loss"].to(self.device)
        self.epoch_seen = state["epoch_seen"]
        self.history = json.loads(state["history"])
        self.wandb_id = state["wandb_id"]
        self.wall_before = state["wall_time_s"]
        self.train_time, self.train_images = state["train_time_s"], state["train_images"]
        ckpt.set_rng_state(state["rng"])
        if self.rank:
            # The saved loss sums are all ranks', held by rank 0; the saved RNG state is rank
            # 0's, so the other ranks offset theirs as at a fresh start.
            self.epoch_loss.zero_()
            self.epoch_seen = 0
            torch.manual_seed(self.cfg.seed + self.rank + 7919 * (self.step + 1))
        return path

    # -- loop ----------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype,
                              enabled=self.dtype != torch.float32)

    def set_lr(self) -> float:
        lr = lr_at(self.step, self.steps_per_epoch, self.budget, self.cfg.recipe)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_epoch(self) -> None:
        cfg, budget = self.cfg, self.budget
        accum = budget.accum_steps
        self.loaders.train_sampler.set_epoch(self.epoch, self.batch_in_epoch * budget.per_device_batch)
        total_batches = self.steps_per_epoch * accum
        self.train_module.train()
        bad_step = torch.full((), -1, device=self.device, dtype=torch.long)
        progress = None
        if self.is_main and cfg.trainer.progress and sys.stderr.isatty():
            from tqdm import tqdm

            progress = tqdm(total=total_batches, initial=self.batch_in_epoch, leave=False,
                            desc=f"epoch {self.epoch + 1}/{budget.epochs}", mininterval=1.0,
                            dynamic_ncols=True)
        t_start = time.time()
        images = 0
        if self.batch_in_epoch < total_batches:
            self.set_lr()
        loader = iter(self.loaders.train)
        while self.batch_in_epoch < total_batches:
            x, y = next(loader)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.mixup is not None:
                x, y = self.mixup(x, y)
            last_micro = (self.batch_in_epoch + 1) % accum == 0
            sync_ctx = (self.train_module.no_sync() if self.world > 1 and not last_micro
                        and hasattr(self.train_module, "no_sync") else contextlib.nullcontext())
            with sync_ctx, self.autocast():
                loss = self.criterion(self.train_module(x), y)
            if self.inject_nan_at is not None and self.step == self.inject_nan_at:
                loss = loss * float("nan")  # fault-injection hook (tests only)
            self.scaler.scale(loss / accum).backward()
            detached = loss.detach()
            self.epoch_loss += detached.double() * x.shape[0]
            self.epoch_seen += x.shape[0]
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(detached),
                                   torch.full_like(bad_step, self.step), bad_step)
            self.batch_in_epoch += 1
            images += x.shape[0]
            if progress is not None:
                progress.update(1)
            if not last_micro:
                continue
            if cfg.recipe.clip_grad:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.recipe.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.model, step=self.step)
            self.step += 1
            if self.step == self.fault_kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.step == self.fault_term_at:
                os.kill(os.getpid(), signal.SIGTERM)
            boundary = self.batch_in_epoch == total_batches
            every = cfg.trainer.checkpoint_every_steps
            want_ckpt = bool(every) and self.step % every == 0 and not boundary
            # Host syncs only here: every log_every steps, before a checkpoint, at the epoch end.
            # These steps are the same on every rank, so the ranks agree on when to stop.
            sync_point = self.step % cfg.trainer.log_every == 0 or want_ckpt or boundary
            if sync_point:
                self.check_finite(bad_step)
                # Train loss (rank 0's shard) and lr every log_every steps; no-op without W&B.
                self.tracker.log_step(self.step, self.epoch_loss, self.epoch_seen,
                                      self.optimizer.param_groups[0]["lr"])
                if progress is not None:
                    progress.set_postfix(loss=f"{(self.epoch_loss / max(1, self.epoch_seen)).item():.3f}")
            if self.stop_requested(sync_point):
                self.train_time += time.time() - t_start
                self.train_images += images * self.world
                self.save_checkpoint()
                raise Preempted(self.stop.signum)
            if want_ckpt:
                self.save_checkpoint()
            if not boundary:
                self.set_lr()
        if progress is not None:
            progress.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.train_time += time.time() - t_start
        self.train_images += images * self.world
        self.last_epoch_img_s = images * self.world / max(1e-9, time.time() - t_start)

    def stop_requested(self, sync_point: bool) -> bool:
        """Has SIGTERM/SIGUSR1 arrived? One process: checked after every step (no sync). Under
        torchrun: agreed by all ranks (an all-reduce) at the shared sync points only, so every
        rank checkpoints and stops after the same optimizer step, even when the signal reached
        only some of them."""
        if self.world == 1:
            return self.stop.signum is not None
        if not sync_point:
            return False
        flag = torch.tensor([self.stop.signum or 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.stop.signum = self.stop.signum or int(flag.item()) or None
        return self.stop.signum is not None

    def global_epoch_loss(self) -> tuple[float, int]:
        """(training-loss sum, images) of this epoch so far over all ranks. Afterwards rank 0
        holds the totals and the others zero, so rank 0's checkpoint carries everyone's."""
        if self.world == 1:
            return self.epoch_loss.item(), self.epoch_seen
        sums = torch.stack([self.epoch_loss, torch.full_like(self.epoch_loss, self.epoch_seen)])
        dist.all_reduce(sums)
        total, seen = sums[0].item(), int(sums[1].item())
        self.epoch_loss.fill_(total if self.is_main else 0.0)
        self.epoch_seen = seen if self.is_main else 0
        return total, seen

    def check_finite(self, bad_step: torch.Tensor) -> None:
        step = int(bad_step.item())
        if step >= 0:
            raise NonFiniteLoss(f"the training loss became NaN or inf at optimizer step {step} "
                                f"(epoch {self.epoch + 1}); stopping. The last good checkpoint "
                                f"is {self.ckpt_path if self.ckpt_path.exists() else 'none'}")

    @torch.no_grad()
    def evaluate(self, module: nn.Module) -> dict[str, float]:
        module.eval()
        k = min(5, self.cfg.model.num_classes)
        stats = torch.zeros(4, device=self.device, dtype=torch.float64)  # top1, topk, loss, n
        for x, y in self.loaders.val:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                logits = module(x)
            top = logits.float().topk(k, dim=1).indices
            hit = top == y[:, None]
            stats[0] += hit[:, 0].sum()
            stats[1] += hit.any(dim=1).sum()
            stats[2] += F.cross_entropy(logits.float(), y, reduction="sum")
            stats[3] += y.numel()
        if self.world > 1:
            dist.all_reduce(stats)
        top1, topk, loss, n = stats.tolist()
        return {"top1": 100 * top1 / n, "top5": 100 * topk / n, "val_loss": loss / n, "val_images": n}

    # -- driver ----------------------------------------------------------------
    def banner(self) -> str:
        c, b = self.cfg, self.budget
        lines = [
            f"[ladder] {self.subject.describe}",
            f"[ladder] data {c.data.name} at {c.data.image_size}px from {self.loaders.source} "
            f"({self.loaders.train_size} train / {self.loaders.val_size} val images; "
            f"{self.loaders.pipeline} pipeline)",
            (f"[ladder] width x{c.model.width_multiplier:g}, stem stride {c.model.stem_stride}, "
             if self.subject.rung else "[ladder] ")
            + f"{self.params / 1e6:.2f}M params; recipe {c.recipe.name}: {b.epochs} epochs "
            f"(paper {c.recipe.epochs}), batch {b.global_batch} = {b.per_device_batch} x "
            f"{b.accum_steps} accum x {self.world} ranks, lr {b.lr:.3g}",
            f"[ladder] {self.device.type} {str(self.dtype).replace('torch.', '')}, "
            f"output {self.out}",
        ]
        if c.experiment == "demo" and self.subject.rung:
            lines.append("[ladder] this is the small demo; the real thing: python train.py "
                         f"+rung={self.subject.rung} preset=imagenet data.root=/path/to/imagenet")
        return "\n".join(lines)

    def run(self) -> dict[str, Any]:
        self.t0 = time.time()
        self.setup()
        self.params = count_params(self.model)
        resumed = None
        source = Path(self.cfg.trainer.resume) if self.cfg.trainer.resume else self.ckpt_path
        if self.cfg.trainer.resume and not source.exists():
            raise ckpt.CheckpointError(f"trainer.resume={source} does not exist")
        if source.exists() or ckpt.previous_path(source).exists():
            resumed = self.load_checkpoint(source)
        if self.is_main:
            print(self.banner(), flush=True)
            if resumed:
                print(f"[ladder] resumed from {resumed} at epoch {self.epoch}, "
                      f"step {self.step}", flush=True)
            self.tracker = create_tracker(
                self.cfg.logger, name=self.subject.name, group=self.cfg.logger.group or self.sweep_group,
                config=self.plain_config(), run_dir=self.cfg.logger.dir or str(self.out),
                run_id=self.wandb_id, tags=self.tags + [self.cfg.experiment, self.cfg.recipe.name])
            self.wandb_id = self.tracker.run_id
        self.stop.install()
        try:
            while self.epoch < self.budget.epochs:
                self.train_epoch()
                loss_sum, seen = self.global_epoch_loss()
                row = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                       "train_loss": loss_sum / max(1, seen), "img_per_s": self.last_epoch_img_s}
                if self.world > 1:
                    # Evaluate the plain module: through DDP, the first eval forward broadcasts
                    # buffers, and a rank with an empty val shard would never join it. Use rank
                    # 0's BatchNorm statistics (the checkpoint's) everywhere instead.
                    for buf in self.model.buffers():
                        dist.broadcast(buf, src=0)
                    row.update(self.evaluate(self.model))
                else:
                    row.update(self.evaluate(self.train_module))
                if self.ema is not None and self.cfg.trainer.eval_ema:
                    row["ema_top1"] = self.evaluate(self.ema.module)["top1"]
                self.history.append(row)
                self.epoch += 1
                self.batch_in_epoch = 0
                self.epoch_loss.zero_()
                self.epoch_seen = 0
                if self.is_main:
                    self.tracker.log({k: v for k, v in row.items() if k != "epoch"}, self.epoch)
                    print(f"[ladder] epoch {self.epoch}/{self.budget.epochs} loss "
                          f"{row['train_loss']:.4f} lr {row['lr']:.3g} top-1 {row['top1']:.2f} "
                          f"top-5 {row['top5']:.2f}"
                          + (f" ema top-1 {row['ema_top1']:.2f}" if "ema_top1" in row else "")
                          + f" | {row['img_per_s']:.0f} img/s", flush=True)
                self.save_checkpoint()
        finally:
            self.stop.restore()
        return self.finish()

    def plain_config(self) -> dict:
        return asdict(self.cfg)

    def finish(self) -> dict[str, Any]:
        last = self.history[-1]
        best = max(self.history, key=lambda r: r["top1"])
        metrics = {"top1": last["top1"], "top5": last["top5"], "best_top1": best["top1"],
                   "best_top5": max(r["top5"] for r in self.history),
                   "ema_top1": last.get("ema_top1"), "train_loss": last["train_loss"],
                   "val_loss": last["val_loss"]}
        result = self.result_base()
        paper, paper_px = self.subject.reference()
        result.update({
            "status": "completed", "error": None, "metrics": metrics, "history": self.history,
            "params": count_params(paper), "gflops": round(count_gmacs(paper, paper_px), 4),
            "trained_params": self.params,
            "trained_gflops": round(count_gmacs(self.model, self.cfg.data.image_size), 6),
            "train_img_per_s": self.train_images / max(1e-9, self.train_time),
            "data_pipeline": self.loaders.pipeline,
            "device": device_name(self.device),  # the card, or the CPU and its compute threads
            "wall_time_s": self.wall_before + (time.time() - self.t0),
            "wandb_run_id": self.wandb_id,
        })
        if self.cfg.trainer.measure_latency:
            from ladder.latency import measure_latency

            result["latency_ms"] = measure_latency(
                self.model, self.cfg.data.image_size, self.device, self.dtype,
                channels_last=self.channels_last)
            result["latency_device"] = device_name(self.device)
        if self.is_main:
            write_json(self.result_path, result)
            self.tracker.summary({**{k: v for k, v in metrics.items() if v is not None},
                                  "params": result["params"], "gflops": result["gflops"],
                                  "train_img_per_s": result["train_img_per_s"],
                                  "wall_time_s": result["wall_time_s"]})
            print(f"[ladder] done: top-1 {metrics['top1']:.2f} (best {metrics['best_top1']:.2f}) "
                  f"in {result['wall_time_s']:.0f}s; result: {self.result_path}", flush=True)
        return result

    def result_base(self) -> dict[str, Any]:
        c = self.cfg
        return {
            "schema": RESULT_SCHEMA, "rung": c.rung and rungs.resolve(c.rung).name,
            "milestone": c.rung and rungs.resolve(c.rung).milestone, "backbone": c.backbone,
            "seed": c.seed, "experiment": c.experiment, "sweep_group": self.sweep_group,
            "dataset": c.data.name, "image_size": c.data.image_size,
            "epochs": getattr(self, "budget", None) and self.budget.epochs,
            "recipe": c.recipe.name, "world_size": self.world,
            "git_commit": git_commit(), "command": self.command, "config": self.plain_config(),
            "output_dir": _relative(self.out),
        }

    def fail(self, err: BaseException) -> None:
        """Record a failed run in result.json (rank 0) and close the tracker."""
        if self.is_main:
            result = self.result_base()
            result.update({"status": "failed", "error": f"{type(err).__name__}: {err}",
                           "metrics": None, "history": self.history})
            try:
                write_json(self.result_path, result)
            except ckpt.CheckpointError as write_err:
                print(f"[ladder] {write_err}", file=sys.stderr)
        self.tracker.finish(exit_code=1)

    inject_nan_at: int | None = None


def _relative(path: Path) -> str:
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


def train(cfg: TrainConfig, output_dir: str | Path, command: str = "",
          sweep_group: str | None = None) -> dict[str, Any]:
    """Train and evaluate ``cfg.rung``; returns the result dict also written to result.json.

    A run that already completed in ``output_dir`` is not retrained: its result is returned.
    On SIGTERM/SIGUSR1 a checkpoint is written and :class:`Preempted` is raised.
    """
    done = completed_result(Path(output_dir))
    if done is not None:
        print(f"[ladder] {cfg.rung or cfg.backbone} (seed {cfg.seed}) already completed in {output_dir}: "
              f"top-1 {done['metrics']['top1']:.2f}; nothing to do (delete result.json to retrain)",
              flush=True)
        return done
    trainer = Trainer(cfg, Path(output_dir), command, sweep_group)
    threads = torch.get_num_threads()  # setup() sets the run's; the caller gets its own back
    try:
        result = trainer.run()
    except Preempted:
        if trainer.is_main:
            print(f"[ladder] stopped by signal {trainer.stop.signum}: checkpoint written to "
                  f"{trainer.ckpt_path}; rerun the same command to resume", flush=True)
        trainer.tracker.finish(exit_code=PREEMPTED_EXIT_CODE)
        raise
    except BaseException as err:
        trainer.fail(err)
        raise
    finally:
        torch.set_num_threads(threads)
    trainer.tracker.finish()
    return result

