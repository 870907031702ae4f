"""Reading one ladder file, ``ladder/<name>.yaml``, and the rung files it names into a
:class:`ladder.rungs.Ladder`: the ``extends`` chain merged, then every key checked. Every error
is one sentence that names the file (a parent outside the ladder, a cycle, a duplicate name, a
milestone naming no rung, reference numbers of the wrong shape). Where the files are looked up
(the search path) is :mod:`ladder.rungs`'s job.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ladder.rungs import KINDS, Ladder, LadderError, Reference, Rung, Target

_KEYS = {"name", "title", "prefix", "extends", "rungs", "aliases", "milestones", "reference",
         "targets"}
_RUNG_KEYS = {"name", "label", "kind"}
_REFERENCE_KEYS = {"source", "table", "metric", "seeds", "numbers", "paper", "arxiv"}
_NUMBER_KEYS = {"top1", "std", "gflops"}
_TARGET_KEYS = {"label", "top1", "note"}


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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        self.check_keys("reference", node, _REFERENCE_KEYS, {"source", "table", "numbers"})
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
            self.check_keys(where, numbers[name], _NUMBER_KEYS, {"top1", "gflops"})
            row = numbers[name]
            for key in ("top1", "std", "gflops"):
                value = row.get(key)
                if not (_number(value) or key == "std" and value is None):
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
            self.check_keys(f"targets[{i}]", t, _TARGET_KEYS, {"label", "top1"})
            if not _number(t["top1"]):
                raise self.fail(f"targets[{i}].top1 is {t['top1']!r}, not a number")
            out.append(Target(str(t["label"]), float(t["top1"]), t.get("note")))
        return tuple(out)
