"""ladder: the ConvNeXt roadmap as a runnable ablation ladder.

Importing the package registers every rung (and milestone alias) as a timm model, so
``timm.create_model("ladder_width", num_classes=10, drop_path_rate=0.1)`` builds it.
"""
from ladder.nets.config import ConfigError, NetConfig
from ladder.nets.model import LadderNet, count_gmacs, count_params
from ladder.ladders.registry import register_timm_models
from ladder.ladders.rungs import MILESTONES, RUNG_NAMES, RUNGS, resolve

register_timm_models()

__all__ = ["ConfigError", "NetConfig", "LadderNet", "count_gmacs",
           "count_params", "MILESTONES", "RUNG_NAMES", "RUNGS", "resolve"]
