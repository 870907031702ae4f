"""End-to-end trainer throughput against the pure training step, measured in the same process.

    python scripts/benchmark.py --trainer demo                       # depthwise, both pipelines
    python scripts/benchmark.py --trainer imagenette_cpu --rungs micro --pipelines device \\
        --override data.root=/path/to/imagenette

For each (rung, pipeline): the real :class:`ladder.train.trainer.Trainer` on the preset trains
``--epochs`` epochs and the last epoch's img/s is read (data loading, augmentation, host syncs,
logging: everything but evaluation); then the same model, optimizer, loss and batch run the pure
training step (forward, backward, optimizer step) on one batch already on the device. The ratio
trainer / pure step is the share of the step's speed the input pipeline keeps.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch


def measure(preset: str, rung: str, pipeline: str, epochs: int = 2, steps: int = 20,
            warmup: int = 3, overrides: tuple[str, ...] = ()) -> dict:
    from omegaconf import OmegaConf

    from ladder.ladders.compose import compose_config
    from ladder.train.trainer import Trainer

    cfg = OmegaConf.to_object(compose_config(rung, [
        f"preset={preset}", "logger=none", "trainer.progress=false",
        f"data.pipeline={pipeline}", *overrides]))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        trainer.t0 = time.time()
        trainer.setup()
        for _ in range(epochs):
            trainer.train_epoch()
            trainer.epoch += 1
            trainer.batch_in_epoch = 0
        end_to_end = trainer.last_epoch_img_s
        # A batch of the trained shape made in memory, not drawn from the loader: a new loader
        # iterator would wake the workers (prefetching) while the pure step is timed.
        size, batch = cfg.data.image_size, trainer.budget.per_device_batch
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, size, size, generator=g).to(trainer.device)
        y = torch.randint(0, cfg.data.num_classes, (batch,), generator=g).to(trainer.device)
        if trainer.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        pure = _pure_step_img_s(trainer, x, y, steps, warmup)
    return {"preset": preset, "rung": trainer.subject.name, "pipeline": trainer.loaders.pipeline,
            "batch": x.shape[0], "trainer_img_per_s": end_to_end, "pure_step_img_per_s": pure,
            "ratio": end_to_end / pure, "threads": torch.get_num_threads(),
            "num_workers": cfg.data.num_workers if trainer.loaders.pipeline == "loader" else 0}


def _pure_step_img_s(trainer, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int) -> float:
    module, optimizer, criterion = trainer.train_module, trainer.optimizer, trainer.criterion
    module.train()
    if trainer.mixup is not None:
        x, y = trainer.mixup(x, y)

    def one_step():
        with trainer.autocast():
            loss = criterion(module(x), y)
        trainer.scaler.scale(loss).backward()
        trainer.scaler.step(optimizer)
        trainer.scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        one_step()
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    sync()
    return x.shape[0] * steps / (time.perf_counter() - start)


def run(args) -> list[dict]:
    rows = []
    for rung in [r.strip() for r in args.rungs.split(",") if r.strip()]:
        for pipeline in args.pipelines.split(","):
            rows.append(measure(args.trainer, rung, pipeline, args.epochs, args.steps,
                                args.warmup, tuple(args.override or ())))
    print(f"trainer vs pure training step, preset {args.trainer}, {rows[0]['threads']} threads")
    print(f"{'rung':<24} {'pipeline':<8} {'batch':>5} {'trainer img/s':>14} {'pure img/s':>11} "
          f"{'ratio':>6}")
    for r in rows:
        print(f"{r['rung']:<24} {r['pipeline']:<8} {r['batch']:>5} {r['trainer_img_per_s']:>14.1f} "
              f"{r['pure_step_img_per_s']:>11.1f} {r['ratio']:>6.2f}")
    return rows
