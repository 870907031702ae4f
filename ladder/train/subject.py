"""What a run trains: a rung of the ladder, or any timm backbone under the rung machinery's
recipe, data, logging and results (the textbook's "Recipe-Matched Backbone Comparison" exercise).

    python train.py +rung=micro                                  # a rung (LadderNet)
    python train.py backbone=vit_small_patch16_224 recipe=modern # any timm.list_models() name

A backbone is built by ``timm.create_model(name, num_classes=..., **backbone_kwargs)``. At a
resolution other than the model's default, models that take ``img_size`` (ViTs, Swin, ...) get
the run's ``data.image_size``, and transformer backbones (those with a ``patch_embed``) the
preset's ``backbone_patch_size`` (the demo's 8 at 32 px: a 4 x 4 token grid); any other
constructor argument goes in ``backbone_kwargs``. CNN backbones keep their ImageNet stems whatever the
resolution (unlike the rungs, whose presets set ``model.stem_stride``).
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, replace
from typing import Callable

import torch.nn as nn

from ladder.ladders import rungs
from ladder.nets.config import ConfigError
from ladder.ladders.schema import TrainConfig


class PretrainedUnavailable(ConfigError):
    """pretrained=true, and timm could not fetch the weights (offline, or none exist)."""


@dataclass
class Subject:
    name: str  # the run's name: the rung, or the timm model name
    rung: str | None
    backbone: str | None
    milestone: str | None
    describe: str  # the banner's first line
    build: Callable[[], nn.Module]
    reference: Callable[[], tuple[nn.Module, int]]  # (model at the reference scale, its input px)
    has_batchnorm: bool


def subject_of(cfg: TrainConfig) -> Subject:
    """The rung or the timm backbone of ``cfg`` (exactly one of ``rung`` / ``backbone``)."""
    if cfg.backbone:
        return _backbone(cfg)
    from ladder.nets.model import LadderNet

    ladder = rungs.load_ladder(cfg.ladder)
    rung = ladder.resolve(cfg.rung)
    return Subject(
        name=rung.name, rung=rung.name, backbone=None, milestone=rung.milestone,
        describe=f"rung {rung.name} (step {ladder.index(rung.name)}: {rung.step}"
                 + (f"; milestone {rung.milestone}" if rung.milestone else "") + ")",
        build=lambda: LadderNet(cfg.model),
        reference=lambda: (LadderNet(replace(cfg.model, width_multiplier=1.0, stem_stride=4,
                                             num_classes=1000)), 224),
        has_batchnorm=cfg.model.norm == "batchnorm")


# ----------------------------------------------------------------------------- timm backbones
def _backbone(cfg: TrainConfig) -> Subject:
    import timm

    name = cfg.backbone
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        raise ConfigError(f"backbone={name!r} is not a timm model"
                          + (f"; similar names: {', '.join(close)}" if close else "")
                          + " (python -c 'import timm; print(timm.list_models())' lists them)")
    default_size = _default_input_size(name)
    probe = _probe(name)
    takes = set(inspect.signature(type(probe).__init__).parameters)
    kwargs = dict(cfg.backbone_kwargs)
    if cfg.data.image_size != default_size and "img_size" in takes:
        kwargs.setdefault("img_size", cfg.data.image_size)
    if cfg.backbone_patch_size and hasattr(probe, "patch_embed") and "patch_size" in takes:
        kwargs.setdefault("patch_size", cfg.backbone_patch_size)

    # The arguments are checked and the layers read on the meta device (no memory, no init);
    # the weights are drawn in build(), after the trainer seeded the generators, as a rung's.
    try:
        shape = _probe(name, num_classes=cfg.model.num_classes, **kwargs)
    except TypeError as err:
        raise ConfigError(f"backbone={name} with {kwargs}: {err}") from None
    return Subject(
        name=name, rung=None, backbone=name, milestone=None,
        describe=f"backbone {name} (timm"
                 + (", pretrained" if cfg.pretrained else ", from scratch")
                 + (f", {', '.join(f'{k}={v}' for k, v in kwargs.items())}" if kwargs else "")
                 + ")",
        build=lambda: create(name, cfg.pretrained, num_classes=cfg.model.num_classes, **kwargs),
        reference=lambda: (create(name, False), default_size),
        has_batchnorm=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in shape.modules()))


def create(name: str, pretrained: bool, **kwargs) -> nn.Module:
    """``timm.create_model``; a failed weight download is one sentence, not a traceback."""
    import timm

    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:  # hub / network errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PretrainedUnavailable(
            f"pretrained=true: could not load timm's weights for {name} ({first[:200]}); "
            f"this needs the Hugging Face Hub (online, or the weights in HF_HOME's cache), "
            f"or train from scratch with pretrained=false") from None


def _default_input_size(name: str) -> int:
    from timm.models import get_pretrained_cfg

    pcfg = get_pretrained_cfg(name)
    size = getattr(pcfg, "input_size", None) if pcfg is not None else None
    return int(size[-1]) if size else 224


def _probe(name: str, **kwargs) -> nn.Module:
    """The model on the meta device (no memory, no init): its class and submodules."""
    import timm
    import torch

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kwargs)
