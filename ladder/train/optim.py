"""Optimizer, parameter groups and the learning-rate schedule (pure functions, testable alone)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from timm.optim import param_groups_weight_decay

from ladder.nets.config import ConfigError
from ladder.ladders.schema import RecipeConfig, TrainerConfig


@dataclass(frozen=True)
class Budget:
    """The run's batch and schedule, derived once from the recipe, the trainer and the world.

    Attributes:
        global_batch: images per optimizer step over all ranks (the effective batch).
        per_device_batch: images per forward pass on one device.
        accum_steps: forward passes per optimizer step on each device.
        lr: peak learning rate, the recipe's per-reference-batch lr scaled linearly.
        epochs: this run's epochs (the preset's, or the recipe's times epoch_scale; then
            times ``trainer.budget``, rounded, at least 1).
        warmup_epochs / step_epochs: scaled by the same factor, so schedules keep their shape.
    """

    global_batch: int
    per_device_batch: int
    accum_steps: int
    lr: float
    epochs: int
    warmup_epochs: float
    step_epochs: float


def make_budget(recipe: RecipeConfig, trainer: TrainerConfig, world_size: int = 1) -> Budget:
    if recipe.name in trainer.by_recipe:  # a preset's settings for this recipe's rungs
        trainer = replace(trainer, **{k: v for k, v in trainer.by_recipe[recipe.name].items()})
    global_batch = trainer.global_batch or recipe.batch_size
    per_device = min(trainer.batch_size, max(1, global_batch // world_size))
    if trainer.grad_accum_steps is not None:
        accum = trainer.grad_accum_steps
        global_batch = per_device * world_size * accum
    else:
        if global_batch % (per_device * world_size):
            raise ConfigError(
                f"trainer.global_batch={global_batch} is not a multiple of trainer.batch_size="
                f"{per_device} x {world_size} ranks; pick sizes that divide (for example "
                f"trainer.batch_size={_largest_divisor(global_batch // world_size, per_device)})")
        accum = global_batch // (per_device * world_size)
    if trainer.epochs is not None:
        epochs = trainer.epochs
    else:
        epochs = max(1, math.ceil(recipe.epochs * trainer.epoch_scale - 1e-9))
    epochs = max(1, round(epochs * trainer.budget))
    scale = epochs / recipe.epochs
    ratio = global_batch / recipe.lr_ref_batch
    lr = recipe.lr * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[trainer.lr_scaling]
    return Budget(global_batch=global_batch, per_device_batch=per_device, accum_steps=accum,
                  lr=lr, epochs=epochs,
                  warmup_epochs=recipe.warmup_epochs * scale,
                  step_epochs=recipe.step_epochs * scale)


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def lr_at(step: int, steps_per_epoch: int, budget: Budget, recipe: RecipeConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based), applied per step.

    Linear warmup from ``recipe.warmup_lr`` over ``warmup_epochs``, then cosine to
    ``recipe.min_lr`` at the end of training, or step decay (x ``step_gamma`` every
    ``step_epochs``).
    """
    total = budget.epochs * steps_per_epoch
    warmup = round(budget.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return recipe.warmup_lr + (budget.lr - recipe.warmup_lr) * step / warmup
    if recipe.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return recipe.min_lr + 0.5 * (budget.lr - recipe.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))
    every = max(1, round(budget.step_epochs * steps_per_epoch))
    return max(recipe.min_lr, budget.lr * recipe.step_gamma ** ((step - warmup) // every))


def param_groups(model: torch.nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Decayed weights, and (unless ``decay_norm_and_bias``) a no-decay group of the 1-D
    parameters: norm weights and biases, conv/linear biases, layer-scale gammas (timm's split)."""
    if decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "weight_decay": weight_decay}]
    return param_groups_weight_decay(model, weight_decay)


def implementation(device: torch.device) -> dict:
    """The optimizer's implementation for parameters on ``device``: on CUDA the fused kernels
    (one launch for every parameter, and the grad scaler's unscale and inf check without a
    host sync); elsewhere torch's default."""
    return {"fused": True} if device.type == "cuda" else {}


def build_optimizer(model: torch.nn.Module, recipe: RecipeConfig, lr: float,
                    device: torch.device | None = None) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``model``'s parameter groups; ``device``: where the
    parameters live (by default, where the first one is)."""
    groups = param_groups(model, recipe.weight_decay, recipe.decay_norm_and_bias)
    if device is None:
        device = next(model.parameters()).device
    kwargs = implementation(device)
    if recipe.optimizer == "sgd":  # torchvision's: plain momentum; Bag of Tricks': Nesterov
        return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               **kwargs)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(recipe.betas), **kwargs)
