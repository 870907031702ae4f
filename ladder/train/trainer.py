"""The trainer: one code path for fp32 / bf16 / fp16, CPU / one GPU / torchrun.

``train(cfg, output_dir=...)`` trains and evaluates one rung and writes ``result.json`` (and a
W&B run). Every epoch end (unless ``trainer.checkpoint_epochs=false``), every
``trainer.checkpoint_every_steps`` optimizer steps and on SIGTERM / SIGUSR1 it writes
``checkpoints/last.pt`` atomically; rerunning in the same output dir resumes from it.

Here: setup, the training step, the epoch loop and evaluation. What a checkpoint holds is in
ladder/train/run_state.py, the banner and result.json in ladder/train/run_results.py, stopping on a signal
in ladder/train/preempt.py. Nothing here imports Hydra.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ladder.utils import checkpoint as ckpt
from ladder.train import run_results, run_state
from ladder.data.loaders import Loaders, build_loaders
from ladder.train.evaluate import evaluate
from ladder.nets.model import count_params
from ladder.train.optim import Budget, build_optimizer, lr_at, make_budget
from ladder.train.preempt import (PREEMPTED_EXIT_CODE, FaultInjection, Preempted, StopAgreement,
                            StopFlag)
from ladder.train.run_results import RunInfo, Trained, completed_result
from ladder.utils.runtime import (choose_cpu_threads, configure_backends, dist_info,
                                  join_process_group, pick_device, pick_dtype, synchronize)
from ladder.ladders.schema import TrainConfig
from ladder.train.subject import subject_of
from ladder.track.tracking import Tracker, create_tracker

__all__ = ["Trainer", "train", "NonFiniteLoss", "Preempted", "StopFlag", "PREEMPTED_EXIT_CODE",
           "completed_result"]


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or inf on some rank; every rank stops at the same step."""


# No bad step yet, in the ranks' agreement on the first one (a MIN over the ranks).
NO_BAD_STEP = 2**62


# Whether the last run of this process ended on every rank together (completed, or an agreed
# stop); read at exit, see end_process_group.
_last_run = {"agreed": True}


def end_process_group() -> None:
    """At exit, destroy the process group a trainer created (NCCL wants it before the process
    ends), unless the last run failed alone: a rank may then be inside a collective, and the
    process just exits. The group is not ended after each run: in-process runs (a Hydra
    multirun under torchrun) share it, since a group destroyed and created again under torchrun
    can meet the old group's keys in torchrun's store."""
    if _last_run["agreed"] and dist.is_initialized():
        dist.destroy_process_group()


def seed_generators(seed: int) -> None:
    """Seed every global generator a rank draws from: torch's (CPU and CUDA), numpy's, Python's."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build_criterion(recipe, num_classes: int):
    """(mixup or None, loss): timm's Mixup/CutMix with soft-target CE, or label-smoothed CE."""
    if recipe.mixup > 0 or recipe.cutmix > 0:
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy

        return (Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix,
                      switch_prob=recipe.mixup_switch_prob,
                      label_smoothing=recipe.label_smoothing, num_classes=num_classes),
                SoftTargetCrossEntropy())
    return None, nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


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
        self.info = RunInfo(cfg, self.out, command, sweep_group, self.world)
        self.subject = None  # the rung or the timm backbone, built in setup()
        self.ckpt_path = self.out / "checkpoints" / "last.pt"
        self.result_path = self.out / "result.json"
        self.tracker: Tracker = Tracker()
        self.stop = StopFlag()
        self.history: list[dict] = []
        self.t0 = time.time()
        self.faults = FaultInjection.from_env()  # the fault tests' hooks; off unless set

    # -- setup ---------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        # The device first: NCCL binds the group to the current device.
        self.device = pick_device(cfg.trainer.device, self.local_rank)
        if self.world > 1 and join_process_group(self.device):
            atexit.register(end_process_group)
        self.subject = subject_of(cfg)
        self.dtype = pick_dtype(cfg.trainer.precision, self.device)
        configure_backends(self.device, cfg.trainer)
        seed_generators(cfg.seed + self.rank)  # before any weights are drawn
        self.budget: Budget = make_budget(cfg.recipe, cfg.trainer, self.world)
        self.loaders: Loaders = build_loaders(
            cfg.data, cfg.recipe, self.budget.per_device_batch, self.budget.accum_steps, cfg.seed,
            self.rank, self.world, pin_memory=self.device.type == "cuda", device=self.device,
            log=lambda msg: print(msg, flush=True))
        self.data_identity = self.loaders.identity(cfg.data.name)
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
        # which is what checkpoints hold and what evaluation runs (a compiled module would add
        # a graph for eval mode, and a recompile for the last, smaller val batch).
        module: nn.Module = self.model
        if self.world > 1:
            module = nn.parallel.DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.train_module = torch.compile(module) if cfg.trainer.compile else module
        self.mixup, self.criterion = build_criterion(cfg.recipe, cfg.model.num_classes)
        self.agreement = StopAgreement(self.stop, self.world, self.device)

        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.batch_in_epoch = 0  # micro-batches consumed in the current epoch
        self.epoch_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        self.epoch_seen = 0
        self.wandb_id: str | None = None
        self.wall_before = 0.0  # wall time of earlier (pre-resume) segments
        self.train_time = 0.0
        self.train_images = 0

    # -- checkpoints (ladder/train/run_state.py) --------------------------------------
    def parts(self) -> run_state.Parts:
        return run_state.Parts(self.model, self.optimizer, self.scaler,
                               self.ema.module if self.ema is not None else None)

    def progress(self) -> run_state.Progress:
        return run_state.Progress(
            epoch=self.epoch, step=self.step, batch_in_epoch=self.batch_in_epoch,
            epoch_loss=self.epoch_loss, epoch_seen=self.epoch_seen, history=self.history,
            wandb_id=self.wandb_id, wall_time_s=self.wall_before + (time.time() - self.t0),
            train_time_s=self.train_time, train_images=self.train_images)

    def save_checkpoint(self) -> None:
        """Rank 0 writes ``ckpt_path`` holding every rank's running loss sums."""
        if self.world > 1:
            self.global_epoch_loss()
        state = (run_state.state_of(self.subject.name, self.parts(), self.progress(), self.device)
                 if self.is_main else None)
        run_state.save(self.ckpt_path, state, self.world)

    def load_checkpoint(self, path: Path) -> Path:
        """Continue from ``path`` (or the previous checkpoint if it is corrupt); returns the
        file used."""
        warn = (lambda msg: print(msg, file=sys.stderr, flush=True)) if self.is_main else (
            lambda msg: None)
        saved, path = run_state.load(path, self.subject.name, self.parts(), self.device, warn)
        self.epoch, self.step = saved.epoch, saved.step
        self.batch_in_epoch = saved.batch_in_epoch
        self.epoch_loss = saved.epoch_loss.to(self.device)
        self.epoch_seen = saved.epoch_seen
        self.history = saved.history
        self.wandb_id = saved.wandb_id
        self.wall_before = saved.wall_time_s
        self.train_time, self.train_images = saved.train_time_s, saved.train_images
        if self.rank:
            # The saved loss sums are all ranks', held by rank 0; the saved generator states are
            # rank 0's, so the other ranks offset theirs as at a fresh start.
            self.epoch_loss.zero_()
            self.epoch_seen = 0
            seed_generators(self.cfg.seed + self.rank + 7919 * (self.step + 1))
        return path

    # -- the step --------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype,
                              enabled=self.dtype != torch.float32)

    def set_lr(self) -> float:
        lr = lr_at(self.step, self.steps_per_epoch, self.budget, self.cfg.recipe)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, last_micro: bool) -> torch.Tensor:
        """One micro-batch: forward under autocast, scaled backward (gradients are summed over
        the accumulation steps, synchronised across ranks on the last). Returns the loss."""
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        sync_ctx = (self.train_module.no_sync() if self.world > 1 and not last_micro
                    and hasattr(self.train_module, "no_sync") else contextlib.nullcontext())
        with sync_ctx, self.autocast():
            loss = self.criterion(self.train_module(x), y)
        if self.inject_nan_at is not None and self.step == self.inject_nan_at:
            loss = loss * float("nan")  # fault-injection hook (tests only)
        self.scaler.scale(loss / self.budget.accum_steps).backward()
        return loss.detach()

    def optimizer_step(self) -> None:
        if self.cfg.recipe.clip_grad:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.recipe.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        self.step += 1
        self.faults.after_step(self.step)

    # -- the epoch -------------------------------------------------------------
    def train_epoch(self) -> None:
        cfg, accum = self.cfg, self.budget.accum_steps
        self.loaders.train_sampler.set_epoch(self.epoch,
                                             self.batch_in_epoch * self.budget.per_device_batch)
        total_batches = self.steps_per_epoch * accum
        self.train_module.train()
        bad_step = torch.full((), -1, device=self.device, dtype=torch.long)
        progress = run_results.progress_bar(self.is_main and cfg.trainer.progress, total_batches,
                                            self.batch_in_epoch, self.epoch, self.budget.epochs)
        t_start, images = time.time(), 0
        if self.batch_in_epoch < total_batches:
            self.set_lr()
        loader = iter(self.loaders.train)
        while self.batch_in_epoch < total_batches:
            x, y = next(loader)
            last_micro = (self.batch_in_epoch + 1) % accum == 0
            loss = self.forward_backward(x, y, last_micro)
            self.epoch_loss += loss.double() * x.shape[0]
            self.epoch_seen += x.shape[0]
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss),
                                   torch.full_like(bad_step, self.step), bad_step)
            self.batch_in_epoch += 1
            images += x.shape[0]
            if progress is not None:
                progress.update(1)
            if not last_micro:
                continue
            self.optimizer_step()
            boundary = self.batch_in_epoch == total_batches
            every = cfg.trainer.checkpoint_every_steps
            want_ckpt = bool(every) and self.step % every == 0 and not boundary
            # Host syncs only here: every log_every steps, before a checkpoint, at the epoch end.
            if self.step % cfg.trainer.log_every == 0 or want_ckpt or boundary:
                self.check_finite(bad_step)
                # Train loss (rank 0's shard) and lr every log_every steps; no-op without W&B.
                self.tracker.log_step(self.step, self.epoch_loss, self.epoch_seen,
                                      self.optimizer.param_groups[0]["lr"])
                if progress is not None:
                    progress.set_postfix(loss=f"{(self.epoch_loss / max(1, self.epoch_seen)).item():.3f}")
            if self.agreement.poll():  # every step; under torchrun the flag of a step ago
                self.train_time += time.time() - t_start
                self.train_images += images * self.world
                self.agreement.drain()
                self.save_checkpoint()
                raise Preempted(self.stop.signum)
            if want_ckpt:
                self.save_checkpoint()
            if not boundary:
                self.set_lr()
        if progress is not None:
            progress.close()
        synchronize(self.device)
        self.train_time += time.time() - t_start
        self.train_images += images * self.world
        self.last_epoch_img_s = images * self.world / max(1e-9, time.time() - t_start)

    def global_epoch_loss(self) -> tuple[float, int]:
        """(training-loss sum, images) of this epoch so far over all ranks. Afterwards rank 0
        holds the totals and the others zero, so rank 0's checkpoint carries everyone's."""
        total, seen = run_state.sum_over_ranks(self.epoch_loss, self.epoch_seen, self.world)
        if self.world > 1:
            self.epoch_loss.fill_(total if self.is_main else 0.0)
            self.epoch_seen = seen if self.is_main else 0
        return total, seen

    def check_finite(self, bad_step: torch.Tensor) -> None:
        """Stop if the loss was NaN or inf at some step (``bad_step``: the first such step on
        this rank, -1 for none). Under torchrun the ranks agree first, so a loss gone bad on one
        rank stops every rank here, naming the first bad step of any rank (gradients
        all-reduced from a bad step make the other ranks' losses bad a step later)."""
        if self.world > 1:
            first = torch.where(bad_step < 0, torch.full_like(bad_step, NO_BAD_STEP), bad_step)
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
            bad_step = torch.where(first == NO_BAD_STEP, torch.full_like(first, -1), first)
        step = int(bad_step.item())
        if step >= 0:
            raise NonFiniteLoss(f"the training loss became NaN or inf at optimizer step {step} "
                                f"(epoch {self.epoch + 1}); stopping. The last good checkpoint "
                                f"is {self.ckpt_path if self.ckpt_path.exists() else 'none'}")

    def evaluate(self, module: nn.Module, loader=None) -> dict[str, float]:
        """top1, top5 and val_loss of ``module`` over ``loader`` (default: the validation set)."""
        return evaluate(module, self.loaders.val if loader is None else loader, self.device,
                        self.autocast, self.channels_last, self.cfg.model.num_classes, self.world)

    def end_epoch(self) -> dict[str, Any]:
        """Evaluate the plain module (never the compiled or DDP one) and record the epoch."""
        loss_sum, seen = self.global_epoch_loss()
        row = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": loss_sum / max(1, seen), "img_per_s": self.last_epoch_img_s}
        if self.world > 1:
            # Through DDP, the first eval forward broadcasts buffers, and a rank with an empty
            # val shard would never join it. Use rank 0's BatchNorm statistics (the
            # checkpoint's) everywhere instead, the EMA's too (each rank averaged its own).
            for module in [self.model] + ([self.ema.module] if self.ema is not None else []):
                for buf in module.buffers():
                    dist.broadcast(buf, src=0)
        row.update(self.evaluate(self.model))
        if self.loaders.holdout is not None:  # data.holdout: the held-out training images
            held = self.evaluate(self.model, self.loaders.holdout)
            row["holdout_top1"], row["holdout_loss"] = held["top1"], held["val_loss"]
        if self.ema is not None and self.cfg.trainer.eval_ema:
            row["ema_top1"] = self.evaluate(self.ema.module)["top1"]
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_loss.zero_()
        self.epoch_seen = 0
        return row

    # -- driver ----------------------------------------------------------------
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
            print(run_results.banner(self.info, self.subject, self.loaders, self.data_identity,
                                     self.budget, self.params, self.device, self.dtype),
                  flush=True)
            if resumed:
                print(f"[ladder] resumed from {resumed} at epoch {self.epoch}, "
                      f"step {self.step}", flush=True)
            self.tracker = create_tracker(
                self.cfg.logger, name=self.subject.name, group=self.cfg.logger.group or self.sweep_group,
                config=run_results.wandb_config(self.info),
                run_dir=self.cfg.logger.dir or str(self.out), run_id=self.wandb_id,
                tags=self.tags + [self.cfg.experiment, self.cfg.recipe.name])
            self.wandb_id = self.tracker.run_id
        self.stop.install()
        try:
            while self.epoch < self.budget.epochs:
                self.train_epoch()
                row = self.end_epoch()
                if self.is_main:
                    self.tracker.log({k: v for k, v in row.items() if k != "epoch"}, self.epoch)
                    print(run_results.epoch_line(row, self.epoch, self.budget.epochs), flush=True)
                if self.cfg.trainer.checkpoint_epochs:
                    self.save_checkpoint()
            self.agreement.drain()
            # A signal from here on only sets the flag: the run is trained, and finish() (which
            # builds the paper-scale model to count its GMACs) must get to write result.json.
            result = run_results.finish(self.info, self.trained(), self.tracker, self.is_main)
        finally:
            self.stop.restore()
        if self.stop.signum is not None and self.is_main:
            print(f"[ladder] signal {self.stop.signum} arrived after the last step; the run "
                  f"completed and {self.result_path} is written", flush=True)
        return result

    def trained(self) -> Trained:
        """What the completed run reports (ladder/train/run_results.py)."""
        return Trained(
            subject=self.subject, model=self.model, history=self.history, params=self.params,
            optimizer_steps=self.step, train_images=self.train_images,
            train_time_s=self.train_time, data_identity=self.data_identity,
            epochs=self.budget.epochs, pipeline=self.loaders.pipeline, device=self.device,
            dtype=self.dtype, channels_last=self.channels_last, wandb_id=self.wandb_id,
            t0=self.t0, wall_before=self.wall_before)

    def fail(self, err: BaseException) -> None:
        """Record the failed run (result.json on rank 0) and close the tracker; works at any
        point, also before setup() read the data."""
        budget = getattr(self, "budget", None)
        run_results.fail(self.info, err, self.history, self.tracker, self.is_main,
                         getattr(self, "data_identity", None), budget and budget.epochs)

    inject_nan_at: int | None = None


def train(cfg: TrainConfig, output_dir: str | Path, command: str = "",
          sweep_group: str | None = None) -> dict[str, Any]:
    """Train and evaluate ``cfg.rung``; returns the result dict also written to result.json.

    A run that already completed in ``output_dir`` is not retrained: its result is returned.
    On SIGTERM/SIGUSR1 a checkpoint is written and :class:`Preempted` is raised.
    """
    if cfg.rung:  # a rung of another ladder fails here, before a folder's old result is reused
        from ladder.ladders import rungs

        rungs.load_ladder(cfg.ladder).resolve(cfg.rung)
    done = completed_result(Path(output_dir))
    if done is not None:
        print(f"[ladder] {cfg.rung or cfg.backbone} (seed {cfg.seed}) already completed in {output_dir}: "
              f"top-1 {done['metrics']['top1']:.2f}; nothing to do (delete result.json to retrain)",
              flush=True)
        return done
    trainer = Trainer(cfg, Path(output_dir), command, sweep_group)
    threads = torch.get_num_threads()  # setup() sets the run's; the caller gets its own back
    agreed = False  # whether every rank ends here together: completed, or an agreed stop
    try:
        result = trainer.run()
        agreed = True
    except Preempted:
        agreed = True
        if trainer.is_main:
            print(f"[ladder] stopped by signal {trainer.stop.signum}: checkpoint written to "
                  f"{trainer.ckpt_path}; rerun the same command to resume", flush=True)
        trainer.tracker.finish(exit_code=PREEMPTED_EXIT_CODE)
        raise
    except BaseException as err:
        agreed = isinstance(err, NonFiniteLoss)
        trainer.fail(err)
        raise
    finally:
        torch.set_num_threads(threads)
        _last_run["agreed"] = agreed
        if cfg.trainer.compile:
            # Compiled graphs of this run's model are of no use to the next one in this process
            # (a Hydra multirun), and they count toward torch.compile's recompile limit.
            torch._dynamo.reset()
    trainer.tracker.finish()
    return result
