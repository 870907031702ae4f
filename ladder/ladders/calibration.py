"""The proxy calibration grid (``conf/calibration/<name>.yaml``): for each recipe, its reference
end and the settings tried one at a time around today's rule, as train.py jobs.

A grid run is named ``<recipe>-base`` or ``<recipe>-<axis>-<value>`` (``modern-lr-0.002``), and
``<recipe>-chosen`` for the confirmation of the adopted values together. Which setting a
finished run had is read back from its own config (``ladder.report.calibration.setting_of``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ladder.ladders import rungs
from ladder.nets.config import ConfigError

GRID_DIR = rungs.CONF_DIR / "calibration"
ALLOWED_PREFIXES = ("recipe.", "model.")


@dataclass(frozen=True)
class Axis:
    name: str
    key: str  # a dotted config key, recipe.* or model.*
    values: tuple[Any, ...]


@dataclass(frozen=True)
class RecipeGrid:
    recipe: str
    end: str  # the rung the recipe was made for
    axes: tuple[Axis, ...]


@dataclass(frozen=True)
class Grid:
    name: str
    holdout: float
    base_seeds: tuple[int, ...]
    min_margin: float
    recipes: tuple[RecipeGrid, ...] = field(default_factory=tuple)

    def recipe(self, name: str) -> RecipeGrid:
        for r in self.recipes:
            if r.recipe == name:
                return r
        raise ConfigError(f"the calibration grid {self.name!r} has no recipe {name!r}; it has "
                          + ", ".join(r.recipe for r in self.recipes))


def value_text(value: Any) -> str:
    """A value as a folder name and an override write it (``0.002``, ``false``, ``trunc_normal``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def load_grid(name_or_path: str | Path = "proxy") -> Grid:
    """Read and check a grid: ``conf/calibration/<name>.yaml`` or a file's path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = GRID_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"no calibration grid {str(name_or_path)!r}: {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    where = f"calibration grid {path}"
    for key in ("holdout", "recipes"):
        if key not in raw:
            raise ConfigError(f"{where} has no {key!r}")
    holdout = raw["holdout"]
    if not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise ConfigError(f"{where}: holdout={holdout!r} is not a fraction in (0, 1)")
    recipes = []
    for recipe, spec in raw["recipes"].items():
        if not isinstance(spec, dict) or "end" not in spec or not spec.get("axes"):
            raise ConfigError(f"{where}: recipe {recipe!r} needs an 'end' rung and 'axes'")
        axes = []
        for axis, a in spec["axes"].items():
            key, values = (a or {}).get("key"), (a or {}).get("values")
            if not isinstance(key, str) or not key.startswith(ALLOWED_PREFIXES):
                raise ConfigError(f"{where}: axis {recipe}.{axis} has key {key!r}; a grid "
                                  f"changes recipe.* or model.* keys only")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: axis {recipe}.{axis} has no list of values")
            axes.append(Axis(axis, key, tuple(values)))
        recipes.append(RecipeGrid(recipe, str(spec["end"]), tuple(axes)))
    return Grid(path.stem, float(holdout), tuple(raw.get("base_seeds", [0])),
                float(raw.get("min_margin", 0.5)), tuple(recipes))


def grid_runs(grid: Grid, recipes: list[str] | None = None) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """(run name, train.py arguments, seeds) for every run of the grid's first phase: each
    recipe's base with ``base_seeds``, then each axis value with the first base seed."""
    out = []
    for r in grid.recipes:
        if recipes and r.recipe not in recipes:
            continue
        common = (f"+rung={r.end}", f"data.holdout={grid.holdout}")
        out.append((f"{r.recipe}-base", common, grid.base_seeds))
        for axis in r.axes:
            for v in axis.values:
                out.append((f"{r.recipe}-{axis.name}-{value_text(v)}",
                            common + (f"{axis.key}={value_text(v)}",), grid.base_seeds[:1]))
    return out


def confirm_run(grid: Grid, recipe: str, adopted: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    """The second phase: the adopted values (key -> value) together, with the base's seeds."""
    r = grid.recipe(recipe)
    return (f"{recipe}-chosen",
            (f"+rung={r.end}", f"data.holdout={grid.holdout}",
             *(f"{k}={value_text(v)}" for k, v in sorted(adopted.items()))), grid.base_seeds)
