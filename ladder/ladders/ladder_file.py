"""The ladder file format's parts that need no ladder: its keys, its error type, and reading one
YAML file of a config directory (``ladder/<name>.yaml``, ``rung/<name>.yaml``). The reader
that checks a whole ladder file and builds the :class:`ladder.ladders.rungs.Ladder` is
:class:`ladder.ladders.rungs.Reader`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ladder.nets.config import ConfigError


class LadderError(ConfigError):
    """A ladder file (or a rung file it names) that cannot be right; the message names the file."""


LADDER_KEYS = {"name", "title", "prefix", "extends", "rungs", "aliases", "milestones",
               "reference", "targets"}
RUNG_KEYS = {"name", "label", "kind"}
REFERENCE_KEYS = {"source", "table", "metric", "seeds", "numbers", "paper", "arxiv"}
NUMBER_KEYS = {"top1", "std", "gflops"}
TARGET_KEYS = {"label", "top1", "note"}


def first_config(conf_dirs: Sequence[Path], group: str, name: str) -> Path | None:
    """``<group>/<name>.yaml`` in the first config directory that has it."""
    return next((d / group / f"{name}.yaml" for d in conf_dirs
                 if (d / group / f"{name}.yaml").is_file()), None)


def read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf  # Hydra's own YAML reading (e.g. 1e-6 is a number)

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # YAML syntax errors come in several types
        raise LadderError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
