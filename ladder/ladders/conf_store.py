"""Registers the typed schema (ladder/ladders/schema.py) in Hydra's ConfigStore.

Imported by the entry points (train.py, ladder.ladders.compose); the rest of the package stays free of
Hydra.
"""
from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ladder.ladders import rungs
from ladder.ladders.schema import TrainConfig

CONF_DIR = rungs.CONF_DIR


def budget_suffix(budget) -> str:
    """The run folder's suffix for ``trainer.budget``: none at the preset's own length (so
    every existing layout stays), ``-budget2`` at twice it."""
    value = float(budget)
    return "" if value == 1 else f"-budget{value:g}"


def ladder_rungs(which: str, *, _root_=None) -> str:
    """``${ladder_rungs:all}`` / ``${ladder_rungs:milestones}``: the composed config's ladder's
    rungs or milestones, comma-separated, as a sweeper's parameter value
    (``hydra.sweeper.params: {+rung: ...}``, conf/sweep/ladder.yaml). The ladder is the
    config's ``ladder.name`` (the default ladder when the config has none)."""
    if which not in rungs.SELECTIONS:
        raise rungs.LadderError(f"${{ladder_rungs:{which}}}: allowed values: "
                                f"{', '.join(rungs.SELECTIONS)}")
    name = OmegaConf.select(_root_, "ladder.name", default=None) if _root_ is not None else None
    return ",".join(rungs.load_ladder(name or rungs.DEFAULT_LADDER).select(which))


def sweep_rungs(spec: str, config_dir: Path = CONF_DIR, ladder: str | None = None) -> list[str]:
    """The rungs of ``+sweep=<spec>`` (``conf/sweep/<spec>.yaml``'s ``+rung`` parameter,
    resolved as the sweeper resolves it), or ``spec`` itself as names separated by commas;
    each name checked, in ``ladder`` (default: ConvNeXt's). For scripts that run a sweep's
    jobs themselves (scripts/sweep.py)."""
    path = Path(config_dir) / "sweep" / f"{spec}.yaml"
    name = ladder or rungs.DEFAULT_LADDER
    if path.is_file():
        node = OmegaConf.load(path)
        node.ladder = {"name": name}  # what ${ladder_rungs:...} reads
        spec = OmegaConf.select(node, "hydra.sweeper.params.+rung")
        if spec is None:  # resolved above, by ladder_rungs for a ladder's sweep
            raise rungs.LadderError(f"{path} sweeps no +rung (hydra.sweeper.params)")
    return rungs.load_ladder(name).select(str(spec))


def register() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("ladder_budget_suffix", budget_suffix, replace=True)
    OmegaConf.register_new_resolver("ladder_rungs", ladder_rungs, replace=True)


register()
