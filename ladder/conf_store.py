"""Registers the typed schema (ladder/schema.py) in Hydra's ConfigStore.

Imported by the entry points (train.py, ladder.compose); the rest of the package stays free of
Hydra.
"""
from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore

from ladder.schema import TrainConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def register() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


register()
