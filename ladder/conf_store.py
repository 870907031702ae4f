"""Registers the typed schema (ladder/schema.py) in Hydra's ConfigStore.

Imported by the entry points (train.py, ladder.compose); the rest of the package stays free of
Hydra.
"""
from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ladder.schema import TrainConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def budget_suffix(budget) -> str:
    """The run folder's suffix for ``trainer.budget``: none at the preset's own length (so
    every existing layout stays), ``-budget2`` at twice it."""
    value = float(budget)
    return "" if value == 1 else f"-budget{value:g}"


def register() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("ladder_budget_suffix", budget_suffix, replace=True)


register()
