"""The ladders: each one an ordered list of rungs with milestones and reference numbers, read
from ``conf/ladder/<name>.yaml`` (:func:`load_ladder`).

Everything else (the report, ``ladder.ladders.inspect``, the timm registry, the tests) reads the ladder
from here. The architecture of each rung lives in ``conf/rung/<name>.yaml``; a rung's parent is
the rung that file lists in its ``defaults`` (not written in the ladder file, so there is one
source of truth). The module-level names (``RUNGS``, ``MILESTONES``, ``resolve`` ...) are those of
the default ladder, ConvNeXt's: Table 10 of Liu et al., "A ConvNet for the 2020s" (CVPR 2022).

A ladder that cannot be right fails when it is read (:class:`Reader`), with one sentence
naming the file: a parent outside the ladder, a cycle, a duplicate name, a milestone naming no
rung, reference numbers of the wrong shape. That a step changes anything at all needs the
composed configs: see :func:`ladder.ladders.compose.check_ladder`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from ladder.ladders.ladder_file import (LADDER_KEYS, NUMBER_KEYS, REFERENCE_KEYS, RUNG_KEYS,
                                TARGET_KEYS, LadderError, first_config, is_number, read_yaml)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
DEFAULT_LADDER = "convnext"
KINDS = ("root", "recipe", "architecture")
SELECTIONS = ("all", "milestones")  # what ${ladder_rungs:...} and Ladder.select accept

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


class Reader:
    """Reads one ladder file; every error is one sentence that names the file."""

    def __init__(self, path: Path, conf_dirs: list[Path]):
        self.path, self.conf_dirs = path, conf_dirs
        self.bases: list[str] = []  # the ladders this file extends, filled by extended()
        # error messages name the rung directory next to the ladder file
        self.rung_dir = path.parent.parent / "rung"

    def rung_path(self, name: str) -> Path:
        """``rung/<name>.yaml`` in the first config directory that has it (else the one next
        to the ladder file, for the error message)."""
        return first_config(self.conf_dirs, "rung", name) or self.rung_dir / f"{name}.yaml"

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
        path = self.rung_path(name)
        if not path.is_file():
            raise self.fail(f"{name!r} has no rung file: {path} does not exist")
        body = read_yaml(path)
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

    def extended(self, data: Any, seen: tuple[str, ...] = ()) -> Any:
        """``data`` with the ladder it ``extends`` merged in: the base's rungs, then this file's;
        aliases alike; milestones, targets and the reference's source from this file where it
        gives them, else the base's; reference numbers merged (this file's win)."""
        if not isinstance(data, dict) or "extends" not in data:
            return data
        base_name = data["extends"]
        if not isinstance(base_name, str) or not base_name:
            raise self.fail(f"extends must name a ladder, not {base_name!r}")
        if base_name in seen or base_name == self.path.stem:
            raise self.fail(f"extends forms a cycle: {' -> '.join((*seen, base_name))}")
        base_path = first_config(self.conf_dirs, "ladder", base_name)
        if base_path is None:
            raise self.fail(f"extends {base_name!r}, but no ladder/{base_name}.yaml is in "
                            f"{', '.join(map(str, self.conf_dirs))}")
        self.bases.append(base_name)  # nearest first, as the recursion goes
        base = self.extended(read_yaml(base_path), (*seen, self.path.stem, base_name))
        if not isinstance(base, dict):
            raise LadderError(f"{base_path} must be a mapping")
        merged = {k: v for k, v in base.items() if k not in ("name", "title", "prefix")}
        merged.update({k: v for k, v in data.items() if k != "extends"})
        for key in ("rungs", "aliases"):
            if isinstance(base.get(key), list) and isinstance(data.get(key, []), list):
                merged[key] = base.get(key, []) + data.get(key, [])
        own_ref = data.get("reference")
        if isinstance(base.get("reference"), dict) and isinstance(own_ref, dict):
            numbers = {**(base["reference"].get("numbers") or {}),
                       **(own_ref.get("numbers") or {})}
            merged["reference"] = {**base["reference"], **own_ref, "numbers": numbers}
        return merged

    def ladder(self, data: Any) -> Ladder:
        data = self.extended(data)
        self.check_keys("the ladder", data, LADDER_KEYS, {"name", "prefix", "rungs",
                                                          "milestones", "reference"})
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
            self.check_keys(f"rungs[{i}]", entry, RUNG_KEYS, RUNG_KEYS)
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
                      self.targets(data.get("targets", [])), tuple(self.bases))

    def check_tree(self, order: list[str], parents: dict, kinds: dict) -> None:
        for name in order:
            parent = parents[name]
            if parent is not None and parent not in parents:
                raise self.fail(f"the parent of rung {name!r} ({parent!r}, from the defaults of "
                                f"{self.rung_path(name)}) is not a rung of this ladder")
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
        self.check_keys("reference", node, REFERENCE_KEYS, {"source", "table", "numbers"})
        for key in ("source", "table", "metric", "paper", "arxiv"):
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
            if name not in numbers:  # a step the reference never measured (a user's own)
                out[name] = (None, None, None)
                continue
            self.check_keys(where, numbers[name], NUMBER_KEYS, {"top1", "gflops"})
            row = numbers[name]
            for key in ("top1", "std", "gflops"):
                value = row.get(key)
                if not (is_number(value) or key == "std" and value is None):
                    raise self.fail(f"{where}.{key} is {value!r}, not a number"
                                    + (" (or null)" if key == "std" else ""))
            out[name] = (float(row["top1"]), None if row.get("std") is None
                         else float(row["std"]), float(row["gflops"]))
        return Reference(node["source"], node["table"], node.get("metric"), seeds,
                         node.get("paper"), node.get("arxiv")), out

    def targets(self, node: Any) -> tuple[Target, ...]:
        if not isinstance(node, list):
            raise self.fail(f"targets must be a list of {{label, top1}}, not {node!r}")
        out = []
        for i, t in enumerate(node):
            self.check_keys(f"targets[{i}]", t, TARGET_KEYS, {"label", "top1"})
            if not is_number(t["top1"]):
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
