"""The ladders: each one an ordered list of rungs with milestones and reference numbers, read
from ``conf/ladder/<name>.yaml`` (:func:`load_ladder`).

Everything else (the report, ``ladder.inspect``, the timm registry, the tests) reads the ladder
from here. The architecture of each rung lives in ``conf/rung/<name>.yaml``; a rung's parent is
the rung that file lists in its ``defaults`` (not written in the ladder file, so there is one
source of truth). The module-level names (``RUNGS``, ``MILESTONES``, ``resolve`` ...) are those of
the default ladder, ConvNeXt's: Table 10 of Liu et al., "A ConvNet for the 2020s" (CVPR 2022).

A ladder that cannot be right fails here with one sentence naming the file: a parent outside
the ladder, a cycle, a duplicate name, a milestone naming no rung, reference numbers of the
wrong shape. That a step changes anything at all needs the composed configs: see
:func:`ladder.compose.check_ladder`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ladder.config import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
DEFAULT_LADDER = "convnext"
KINDS = ("root", "recipe", "architecture")
SELECTIONS = ("all", "milestones")  # what ${ladder_rungs:...} and Ladder.select accept

_KEYS = {"name", "title", "prefix", "rungs", "aliases", "milestones", "reference", "targets"}
_RUNG_KEYS = {"name", "label", "kind"}
_REFERENCE_KEYS = {"source", "table", "metric", "seeds", "numbers"}
_NUMBER_KEYS = {"top1", "std", "gflops"}
_TARGET_KEYS = {"label", "top1", "note"}


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
        paper_top1: the reference top-1 (%).
        paper_top1_std: the reference seed std (%), ``None`` where the paper gives none.
        paper_gflops: the reference GFLOPs (GMACs of conv + linear layers at 224 px).
        kind: what the step changes: ``root``, ``recipe`` or ``architecture``.
        side_branch: off the path from the root to the ladder's last rung (kernel 9/11), so
            measured against its parent.
    """

    name: str
    step: str
    parent: str | None
    milestone: str | None
    paper_top1: float
    paper_top1_std: float | None
    paper_gflops: float
    kind: str = "architecture"
    side_branch: bool = False


@dataclass(frozen=True)
class Reference:
    """Where a ladder's reference numbers come from."""

    source: str
    table: str
    metric: str | None = None
    seeds: int | None = None  # how many seeds the paper's mean and std are over


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
        raise LadderError(f"unknown rung {name!r}; valid rungs: {', '.join(self.names)}; "
                          f"milestones: {', '.join(self.milestones)}")

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


def load_ladder(name: str = DEFAULT_LADDER, search_path: str | Path | None = None) -> Ladder:
    """The ladder ``<search_path>/ladder/<name>.yaml`` (default: the package's ``conf/``), its
    parents read from ``<search_path>/rung/``; read and checked once per (name, path)."""
    return _load(str(name), str(Path(search_path or CONF_DIR).resolve()))


@lru_cache(maxsize=None)
def _load(name: str, conf: str) -> Ladder:
    conf_dir = Path(conf)
    path = conf_dir / "ladder" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (conf_dir / "ladder").glob("*.yaml"))
        raise LadderError(f"no ladder {name!r}: {path} does not exist (ladders there: "
                          f"{', '.join(known) or 'none'})")
    return _Reader(path, conf_dir).ladder(_read_yaml(path))


def _read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf  # Hydra's own YAML reading (e.g. 1e-6 is a number)

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # YAML syntax errors come in several types
        raise LadderError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Reader:
    """Reads one ladder file; every error is one sentence that names the file."""

    def __init__(self, path: Path, conf_dir: Path):
        self.path, self.rung_dir = path, conf_dir / "rung"

    def fail(self, message: str) -> LadderError:
        return LadderError(f"{self.path}: {message}")

    def check_keys(self, where: str, node: Any, allowed: set[str], required: set[str]) -> None:
        if not isinstance(node, dict):
            raise self.fail(f"{where} must be a mapping with keys {', '.join(sorted(allowed))}, "
                            f"not {node!r}")
        unknown, missing = sorted(set(node) - allowed), sorted(required - set(node))
        if unknown:
            raise self.fail(f"{where} has unknown key(s) {', '.join(map(str, unknown))} "
                            f"(allowed: {', '.join(sorted(allowed))})")
        if missing:
            raise self.fail(f"{where} lacks {', '.join(missing)}")

    def names(self, key: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be a list of names, not {value!r}")
        twice = next((v for i, v in enumerate(value) if v in value[:i]), None)
        if twice is not None:
            raise self.fail(f"{key} lists {twice!r} twice")
        return value

    def rung_file(self, name: str, alias: bool = False) -> tuple[Path, dict]:
        path = self.rung_dir / f"{name}.yaml"
        if not path.is_file():
            raise self.fail(f"{name!r} has no rung file: {path} does not exist")
        body = _read_yaml(path)
        if not isinstance(body, dict):
            raise LadderError(f"{path} must be a mapping (defaults, rung, model ...)")
        if not alias and body.get("rung") != name:
            raise LadderError(f"{path} sets rung: {body.get('rung')!r}; a rung file must set "
                              f"rung: {name} (its own name), or it composes under another name")
        return path, body

    def parent_of(self, path: Path, body: dict) -> str | None:
        """The rung a rung file builds on: the one plain entry of its defaults besides _self_."""
        defaults = body.get("defaults", [])
        plain = [e for e in defaults if isinstance(e, str) and e != "_self_"] \
            if isinstance(defaults, list) else None
        if plain is None or len(plain) > 1:
            raise LadderError(f"{path}: defaults must list at most one parent rung (besides "
                              f"_self_ and group overrides), not {defaults!r}")
        return plain[0].removeprefix("/rung/") if plain else None

    def ladder(self, data: Any) -> Ladder:
        self.check_keys("the ladder", data, _KEYS, {"name", "prefix", "rungs", "milestones",
                                                    "reference"})
        if data["name"] != self.path.stem:
            raise self.fail(f"name is {data['name']!r}; it must be the file's name, "
                            f"{self.path.stem!r}")
        if not isinstance(data["prefix"], str) or not data["prefix"].isidentifier():
            raise self.fail(f"prefix must be a Python identifier such as 'ladder_' (timm "
                            f"registers <prefix><rung>), not {data['prefix']!r}")
        entries = data["rungs"]
        if not isinstance(entries, list) or not entries:
            raise self.fail("rungs must be a non-empty list of {name, label, kind}")
        for i, entry in enumerate(entries):
            self.check_keys(f"rungs[{i}]", entry, _RUNG_KEYS, _RUNG_KEYS)
            if entry["kind"] not in KINDS:
                raise self.fail(f"rung {entry['name']!r} has kind {entry['kind']!r}; allowed "
                                f"kinds: {', '.join(KINDS)}")
        order = self.names("rungs", [e["name"] for e in entries])
        parents = {name: self.parent_of(*self.rung_file(name)) for name in order}
        self.check_tree(order, parents, {e["name"]: e["kind"] for e in entries})
        aliases = self.aliases(self.names("aliases", data.get("aliases", [])), set(order))
        milestones = self.milestones(self.names("milestones", data["milestones"]), order,
                                     aliases)
        reference, numbers = self.reference(data["reference"], order)
        main = [order[-1]]  # the path from the last rung back to the root
        while parents[main[-1]]:
            main.append(parents[main[-1]])
        rung_of = {v: k for k, v in milestones.items()}
        rungs = tuple(Rung(e["name"], str(e["label"]), parents[e["name"]], rung_of.get(e["name"]),
                           *numbers[e["name"]], kind=e["kind"], side_branch=e["name"] not in main)
                      for e in entries)
        return Ladder(data["name"], str(data.get("title") or data["name"]), self.path,
                      data["prefix"], rungs, milestones, aliases, reference,
                      self.targets(data.get("targets", [])))

    def check_tree(self, order: list[str], parents: dict, kinds: dict) -> None:
        for name in order:
            parent = parents[name]
            if parent is not None and parent not in parents:
                raise self.fail(f"the parent of rung {name!r} ({parent!r}, from the defaults of "
                                f"{self.rung_dir / f'{name}.yaml'}) is not a rung of this ladder")
        for name in order:  # a cycle: following the parents comes back to a rung
            chain, seen = [name], {name}
            while parents[chain[-1]] is not None:
                chain.append(parents[chain[-1]])
                if chain[-1] in seen:
                    loop = chain[chain.index(chain[-1]):]
                    raise self.fail(f"the rungs' parents (the defaults of their files in "
                                    f"{self.rung_dir}) form a cycle: {' -> '.join(loop)}")
                seen.add(chain[-1])
        roots = [n for n in order if parents[n] is None]
        if roots != [order[0]]:
            raise self.fail(f"exactly one rung, the first ({order[0]!r}), must have no parent "
                            f"(the root); rungs without one: {', '.join(roots)}")
        for i, name in enumerate(order[1:], 1):
            if order.index(parents[name]) > i:
                raise self.fail(f"rung {name!r} is listed before its parent {parents[name]!r}")
        wrong = [n for n in order if (kinds[n] == "root") != (parents[n] is None)]
        if wrong:
            raise self.fail(f"kind 'root' is for the rung without a parent ({order[0]!r}) "
                            f"only; wrong kind on: {', '.join(wrong)}")

    def aliases(self, names: list[str], rungs: set[str]) -> dict[str, str]:
        out = {}
        for alias in names:
            if alias in rungs:
                raise self.fail(f"{alias!r} is both a rung and an alias")
            path, body = self.rung_file(alias, alias=True)
            target = self.parent_of(path, body)
            if target not in rungs or set(body) - {"defaults"}:
                raise LadderError(f"{path} (alias {alias!r} of {self.path}) must only point at "
                                  f"a rung of the ladder: defaults: [<rung>, _self_] and nothing "
                                  f"else")
            out[alias] = target
        return out

    def milestones(self, names: list[str], order: list[str], aliases: dict) -> dict[str, str]:
        out: dict[str, str] = {}
        for m in names:
            rung = m if m in order else aliases.get(m)
            if rung is None:
                raise self.fail(f"milestone {m!r} names no rung (rungs: {', '.join(order)}; "
                                f"aliases: {', '.join(aliases) or 'none'})")
            if rung in out.values():
                raise self.fail(f"milestones {next(k for k, v in out.items() if v == rung)!r} "
                                f"and {m!r} are the same rung, {rung!r}")
            out[m] = rung
        return out

    def reference(self, node: Any, order: list[str]) -> tuple[Reference, dict]:
        self.check_keys("reference", node, _REFERENCE_KEYS, {"source", "table", "numbers"})
        for key in ("source", "table", "metric"):
            if node.get(key) is not None and not isinstance(node[key], str):
                raise self.fail(f"reference.{key} must be a string, not {node[key]!r}")
        seeds = node.get("seeds")
        if seeds is not None and (not isinstance(seeds, int) or isinstance(seeds, bool)
                                  or seeds < 1):
            raise self.fail(f"reference.seeds must be a whole number >= 1, not {seeds!r}")
        numbers = node["numbers"]
        if not isinstance(numbers, dict):
            raise self.fail(f"reference.numbers must map each rung to {{top1, std, gflops}}, "
                            f"not {numbers!r}")
        extra = sorted(set(numbers) - set(order))
        if extra:
            raise self.fail(f"reference.numbers has {', '.join(map(str, extra))}, not a rung "
                            f"of this ladder")
        out = {}
        for name in order:
            where = f"reference.numbers.{name}"
            if name not in numbers:
                raise self.fail(f"{where} is missing (every rung needs its reference numbers)")
            self.check_keys(where, numbers[name], _NUMBER_KEYS, {"top1", "gflops"})
            row = numbers[name]
            for key in ("top1", "std", "gflops"):
                value = row.get(key)
                if not (_number(value) or key == "std" and value is None):
                    raise self.fail(f"{where}.{key} is {value!r}, not a number"
                                    + (" (or null)" if key == "std" else ""))
            out[name] = (float(row["top1"]), None if row.get("std") is None
                         else float(row["std"]), float(row["gflops"]))
        return Reference(node["source"], node["table"], node.get("metric"), seeds), out

    def targets(self, node: Any) -> tuple[Target, ...]:
        if not isinstance(node, list):
            raise self.fail(f"targets must be a list of {{label, top1}}, not {node!r}")
        out = []
        for i, t in enumerate(node):
            self.check_keys(f"targets[{i}]", t, _TARGET_KEYS, {"label", "top1"})
            if not _number(t["top1"]):
                raise self.fail(f"targets[{i}].top1 is {t['top1']!r}, not a number")
            out.append(Target(str(t["label"]), float(t["top1"]), t.get("note")))
        return tuple(out)


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
