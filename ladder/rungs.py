"""The ladders: each one an ordered list of rungs with milestones and reference numbers, read
from ``conf/ladder/<name>.yaml`` (:func:`load_ladder`).

Everything else (the report, ``ladder.inspect``, the timm registry, the tests) reads the ladder
from here. The architecture of each rung lives in ``conf/rung/<name>.yaml``; a rung's parent is
the rung that file lists in its ``defaults`` (not written in the ladder file, so there is one
source of truth). The module-level names (``RUNGS``, ``MILESTONES``, ``resolve`` ...) are those of
the default ladder, ConvNeXt's: Table 10 of Liu et al., "A ConvNet for the 2020s" (CVPR 2022).

A ladder that cannot be right fails when it is read (:mod:`ladder.ladder_file`), with one
sentence naming the file: a parent outside the ladder, a cycle, a duplicate name, a milestone
naming no rung, reference numbers of the wrong shape. That a step changes anything at all needs the composed configs: see
:func:`ladder.compose.check_ladder`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ladder.config import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
DEFAULT_LADDER = "convnext"
KINDS = ("root", "recipe", "architecture")
SELECTIONS = ("all", "milestones")  # what ${ladder_rungs:...} and Ladder.select accept

class LadderError(ConfigError):
    """A ladder file (or a rung file it names) that cannot be right; the message names the file."""


@dataclass(frozen=True)
class Rung:
    """One step of a ladder.

    Args:
        name: the rung's config name (``conf/rung/<name>.yaml``), also its timm name suffix.
        step: the paper's name for the step (the ladder file's ``label``).
        parent: the rung this one changes (``None`` for the root), from the rung file's
            ``defaults``. Side branches (kernel 9/11) have a parent that is not the rung
            listed just before them.
        milestone: the chapter's milestone this rung completes, if any.
        paper_top1: the reference top-1 (%); ``None`` for a rung without reference numbers (a
            step a user adds, which the paper never measured).
        paper_top1_std: the reference seed std (%), ``None`` where the paper gives none.
        paper_gflops: the reference GFLOPs (GMACs of conv + linear layers at 224 px), or
            ``None`` with ``paper_top1``.
        kind: what the step changes: ``root``, ``recipe`` or ``architecture``.
        side_branch: off the path from the root to the ladder's last rung (kernel 9/11), so
            measured against its parent.
    """

    name: str
    step: str
    parent: str | None
    milestone: str | None
    paper_top1: float | None
    paper_top1_std: float | None
    paper_gflops: float | None
    kind: str = "architecture"
    side_branch: bool = False


@dataclass(frozen=True)
class Reference:
    """Where a ladder's reference numbers come from."""

    source: str
    table: str
    metric: str | None = None
    seeds: int | None = None  # how many seeds the paper's mean and std are over
    paper: str | None = None  # the paper's title (timm's paper_name)
    arxiv: str | None = None  # its arXiv id (timm's paper_ids)


@dataclass(frozen=True)
class Target:
    """A horizontal line of the figure, e.g. Swin-T's 81.3."""

    label: str
    top1: float
    note: str | None = None


@dataclass(frozen=True, eq=False)
class Ladder:
    """One ladder, as :func:`load_ladder` reads it (checked: see the module docstring)."""

    name: str
    title: str
    path: Path  # the ladder file
    prefix: str  # timm registry prefix: ``<prefix><rung>``
    rungs: tuple[Rung, ...]
    milestones: dict[str, str]  # milestone -> rung, in the chapter's order
    aliases: dict[str, str]  # alias -> rung
    reference: Reference
    targets: tuple[Target, ...]
    bases: tuple[str, ...] = ()  # the ladders it extends, nearest first (``extends``)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rungs)

    @property
    def kinds(self) -> dict[str, str]:
        """rung -> ``root`` / ``recipe`` / ``architecture``."""
        return {r.name: r.kind for r in self.rungs}

    @property
    def side_branches(self) -> frozenset[str]:
        return frozenset(r.name for r in self.rungs if r.side_branch)

    def valid_names(self) -> list[str]:
        """Every name ``+rung=`` accepts for this ladder: the rungs, then the aliases."""
        return list(self.names) + list(self.aliases)

    def resolve(self, name: str) -> Rung:
        """The rung for a rung, alias or milestone name; unknown names fail listing the valid
        ones."""
        rung = self.aliases.get(name) or self.milestones.get(name) or name
        for r in self.rungs:
            if r.name == rung:
                return r
        elsewhere = [other for other in ladder_names(self.path.parent.parent)
                     if other != self.name and _has_rung(other, name, self.path.parent.parent)]
        hint = (f"; {name!r} is a rung of ladder {', '.join(elsewhere)}: add "
                f"ladder={elsewhere[0]}" if elsewhere else "")
        raise LadderError(f"unknown rung {name!r} in ladder {self.name!r}{hint}; valid rungs: "
                          f"{', '.join(self.names)}; milestones: {', '.join(self.milestones)}")

    def index(self, name: str) -> int:
        """Position of a rung (or alias, or milestone) in ladder order."""
        return self.names.index(self.resolve(name).name)

    def main_path(self, top: str | None = None) -> list[str]:
        """The rungs from the root to ``top`` (default: the last rung, ConvNeXt-T), following the
        parents (side branches left out)."""
        path = [self.resolve(top or self.rungs[-1].name)]
        while path[-1].parent:
            path.append(self.resolve(path[-1].parent))
        return [r.name for r in reversed(path)]

    def select(self, spec: str) -> list[str]:
        """``all`` (every rung in order), ``milestones`` (their names, aliases kept), or names
        separated by commas (each checked)."""
        if spec == "all":
            return list(self.names)
        if spec == "milestones":
            return list(self.milestones)
        names = [s.strip() for s in str(spec).split(",") if s.strip()]
        for name in names:
            self.resolve(name)
        return names

    def target(self, label: str) -> float:
        for t in self.targets:
            if t.label == label:
                return t.top1
        raise LadderError(f"{self.path}: no target {label!r} (targets: "
                          f"{', '.join(t.label for t in self.targets) or 'none'})")


def load_ladder(name: str = DEFAULT_LADDER,
                search_path: str | Path | Sequence[str | Path] | None = None) -> Ladder:
    """The ladder ``ladder/<name>.yaml`` and its rungs' files ``rung/<rung>.yaml``, each taken
    from the first config directory that has it: ``search_path`` (one directory or several,
    e.g. a user's ``--config-dir``; see :func:`set_search_path`), then the package's ``conf/``.
    Read and checked once per (name, directories)."""
    if search_path is None:
        dirs = _SEARCH_PATH
    elif isinstance(search_path, (str, Path)):
        dirs = (search_path,)
    else:
        dirs = tuple(search_path)
    return _load(str(name), config_dirs(dirs))


def config_dirs(extra: Sequence[str | Path] = ()) -> tuple[str, ...]:
    """``extra`` then the package's ``conf/``, resolved, each once, in search order."""
    out: list[str] = []
    for d in (*extra, CONF_DIR):
        path = str(Path(d).expanduser().resolve())
        if path not in out:
            out.append(path)
    return tuple(out)


_SEARCH_PATH: tuple[str, ...] = ()


def set_search_path(dirs: Sequence[str | Path]) -> None:
    """Config directories searched before the package's ``conf/`` by every later
    :func:`load_ladder` call without its own ``search_path``: the entry points set it from
    Hydra's search path (``--config-dir``) or a script's ``--config-dir``."""
    global _SEARCH_PATH
    _SEARCH_PATH = tuple(str(Path(d).expanduser().resolve()) for d in dirs)


def search_path() -> tuple[str, ...]:
    """The directories :func:`load_ladder` searches by default, the package's ``conf/`` last."""
    return config_dirs(_SEARCH_PATH)


@lru_cache(maxsize=None)
def _load(name: str, dirs: tuple[str, ...]) -> Ladder:
    from ladder.ladder_file import Reader, first_config, read_yaml  # it builds this module's types

    conf_dirs = [Path(d) for d in dirs]
    path = first_config(conf_dirs, "ladder", name)
    if path is None:
        known = sorted({p.stem for d in conf_dirs for p in (d / "ladder").glob("*.yaml")})
        raise LadderError(f"no ladder {name!r}: no ladder/{name}.yaml in "
                          f"{', '.join(map(str, conf_dirs))} (ladders there: "
                          f"{', '.join(known) or 'none'})")
    return Reader(path, conf_dirs).ladder(read_yaml(path))


def ladder_names(conf_dir: str | Path | None = None) -> list[str]:
    """The ladders :func:`load_ladder` can find (``conf_dir`` searched before the default
    search path), sorted."""
    dirs = config_dirs((conf_dir, *_SEARCH_PATH) if conf_dir else _SEARCH_PATH)
    return sorted({p.stem for d in dirs for p in (Path(d) / "ladder").glob("*.yaml")})


def _has_rung(ladder: str, rung: str, conf_dir: Path) -> bool:
    try:
        return rung in load_ladder(ladder, (conf_dir, *_SEARCH_PATH)).valid_names()
    except LadderError:  # a broken ladder elsewhere does not hide this error
        return False


# ----------------------------------------------------------------------------- the default ladder
LADDER: Ladder = load_ladder()
RUNGS: tuple[Rung, ...] = LADDER.rungs
RUNG_NAMES: tuple[str, ...] = LADDER.names

# Rungs off the path from the root to ConvNeXt-T (kernel 9 and 11 branch off kernel7; the micro
# steps build on kernel7 again). Derived from the parents, not listed by hand.
SIDE_BRANCHES: frozenset[str] = LADDER.side_branches

# The chapter's milestones in order (plus the root), each the rung that completes that stage.
MILESTONES: dict[str, str] = LADDER.milestones

SWIN_T_TOP1 = LADDER.target("Swin-T")  # the target line of the paper's Figure 2 (ImageNet only)


def valid_names() -> list[str]:
    """Every name ``+rung=`` accepts: the 17 rungs, then the milestone aliases."""
    return LADDER.valid_names()


def resolve(name: str) -> Rung:
    """Return the rung for a rung or milestone name; unknown names fail listing the valid ones."""
    return LADDER.resolve(name)


def index(name: str) -> int:
    """Position of a rung (or milestone) in ladder order."""
    return LADDER.index(name)
