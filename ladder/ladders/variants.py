"""Experiments beyond the ladder, as overrides on the rungs' own axes (no new code paths).

**Leave-one-out from the top.** Each architectural step of the ladder is a diff of model keys
(``conf/rung/<step>.yaml``). Undoing one change alone at ConvNeXt-T puts those keys back to their
value before the step, everything else staying at the top. The list is generated from the
composed rung configs, not written by hand:

* the steps on the path from the root to the top, each with the model keys it changes;
* a step the ladder file (``conf/ladder/<name>.yaml``) does not mark ``kind: architecture``
  (the recipe step) is left out, with the reason (what it changes besides ``model.*``;
  :func:`ladder.ladders.compose.check_ladder` checks that the architecture steps change nothing else);
* steps that change the same key are one change (kernel 3 -> 5 -> 7 is undone as 7 -> 3); its
  value on the ladder is then the sum of those steps;
* each undo is composed and checked by the schema: a combination the schema refuses is kept in
  the list with the schema's message and not run.

:func:`loo_jobs` lists the runs of the leave-one-out sweep (scripts/loo.py,
:mod:`ladder.train.loo`): per seed the top, each change the schema accepts, and the ladder rungs
each change is measured between.

**Variants of a run.** :func:`variant_of` says how a run's model differs from its rung on these
axes (the keys any architectural step changes), so the report keeps leave-one-out and norm x
batch runs out of the ladder's rows and finds them for their own views.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ladder.ladders import rungs

MODEL = "model."


def _ladder(ladder: str | None) -> rungs.Ladder:
    return rungs.load_ladder(ladder or rungs.DEFAULT_LADDER)


@lru_cache(maxsize=None)
def _flat(rung: str, ladder: str | None = None) -> dict[str, Any]:
    """The rung's composed config (default preset) as dotted keys; composed once per rung."""
    from ladder.ladders.compose import compose_config, flatten

    return flatten(compose_config(rung, ladder=ladder))


def _step_diff(rung: str, parent: str, ladder: str | None = None) -> dict[str, tuple[Any, Any]]:
    a, b = _flat(parent, ladder), _flat(rung, ladder)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k != "rung" and a.get(k) != b.get(k)}


def _is_architectural(rung: str, ladder: str | None = None) -> bool:
    return _ladder(ladder).kinds[rung] == "architecture"


@lru_cache(maxsize=None)
def axes(ladder: str | None = None) -> tuple[str, ...]:
    """The model keys (without ``model.``) that some architectural step of the ladder (default:
    ConvNeXt's) changes."""
    keys: set[str] = set()
    for r in _ladder(ladder).rungs:
        if r.parent and _is_architectural(r.name, ladder):
            keys |= {k[len(MODEL):] for k in _step_diff(r.name, r.parent, ladder)
                     if k.startswith(MODEL)}
    return tuple(sorted(keys))


@lru_cache(maxsize=None)
def rung_axes(rung: str, ladder: str | None = None) -> tuple[tuple[str, Any], ...]:
    """The rung's values on :func:`axes`."""
    flat = _flat(rung, ladder)
    return tuple((k, _frozen(flat.get(MODEL + k))) for k in axes(ladder))


def variant_of(rung: str, model: dict[str, Any], ladder: str | None = None
               ) -> tuple[tuple[str, Any], ...]:
    """How ``model`` (a run's model config) differs from ``rung``'s on the ladder's axes:
    ``(key, value)`` pairs, empty for the rung itself. Keys the run does not record are not
    compared (older results, partial W&B configs)."""
    return tuple((k, _frozen(model[k])) for k, v in rung_axes(rung, ladder)
                 if k in model and _frozen(model[k]) != v)


def _frozen(v: Any) -> Any:
    """Lists as tuples, so variants can be compared and used as keys."""
    return tuple(_frozen(x) for x in v) if isinstance(v, (list, tuple)) else v


def _hydra_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_hydra_value(x) for x in v) + "]"
    return "null" if v is None else str(v)


def _short(v: Any) -> str:
    return "(" + ",".join(map(str, v)) + ")" if isinstance(v, (list, tuple)) else str(v)


@dataclass(frozen=True)
class Undo:
    """One architectural change of the ladder, undone alone at the top.

    Args:
        steps: the ladder steps whose change this undoes (several when they change one key).
        before: the rung before the first of them; on the ladder the change is worth
            ``mean(steps[-1]) - mean(before)``.
        top: the rung it is undone at.
        changes: (model key, the value it returns to), one pair per key.
        top_values: the same keys' values at the top.
        refused: the schema's message when the combination is invalid (then it is not run).
    """

    steps: tuple[str, ...]
    before: str
    top: str
    changes: tuple[tuple[str, Any], ...]
    top_values: tuple[tuple[str, Any], ...]
    refused: str | None = None

    @property
    def name(self) -> str:
        """The run folder's name: ``undo_<step>[+<step>...]``."""
        return "undo_" + "+".join(self.steps)

    @property
    def after(self) -> str:
        return self.steps[-1]

    @property
    def label(self) -> str:
        """e.g. ``norm layernorm -> batchnorm``."""
        top = dict(self.top_values)
        return "; ".join(f"{k} {_short(top[k])} \u2192 {_short(v)}" for k, v in self.changes)

    def overrides(self) -> list[str]:
        """Hydra overrides that turn ``+rung=<top>`` into this variant."""
        return [f"{MODEL}{k}={_hydra_value(v)}" for k, v in self.changes]


def main_path(top: str | None = None, ladder: str | None = None) -> list[str]:
    """The rungs from the root to ``top`` (default: the ladder's last rung, ConvNeXt-T for
    ConvNeXt's), following the parents."""
    return _ladder(ladder).main_path(top)


def _schema_refusal(top: str, overrides: list[str], ladder: str | None = None) -> str | None:
    """None when ``+rung=top overrides`` passes the schema, else the schema's message."""
    from omegaconf import OmegaConf

    from ladder.ladders.compose import compose_config
    from ladder.nets.config import ConfigError

    try:
        OmegaConf.to_object(compose_config(top, overrides, ladder=ladder))
    except ConfigError as err:
        return str(err)
    return None


@lru_cache(maxsize=None)
def leave_one_out(top: str | None = None, ladder: str | None = None
                  ) -> tuple[tuple[Undo, ...], tuple[tuple[str, str], ...]]:
    """(every architectural change undone alone at ``top``, in ladder order; the steps left out
    with the reason). Refused combinations are in the first list with ``refused`` set."""
    path = main_path(top, ladder)
    top = path[-1]
    top_flat = _flat(top, ladder)
    groups: list[dict[str, Any]] = []  # {"steps": [...], "before": rung, "keys": [...]}
    skipped = []
    for parent, rung in zip(path, path[1:]):
        diff = _step_diff(rung, parent, ladder)
        if not _is_architectural(rung, ladder):
            other = sorted({k.split(".")[0] for k in diff if not k.startswith(MODEL)})
            skipped.append((rung, f"changes {', '.join(f'{k}.*' for k in other)}, not only the "
                                  "architecture (model.*)"))
            continue
        keys = [k[len(MODEL):] for k in diff]
        same = next((g for g in groups if set(g["keys"]) & set(keys)), None)
        if same is not None:  # another step on the same key: one change, undone together
            same["steps"].append(rung)
            same["keys"] += [k for k in keys if k not in same["keys"]]
        else:
            groups.append({"steps": [rung], "before": parent, "keys": keys})
    undos = []
    for g in groups:
        before = _flat(g["before"], ladder)
        changes = tuple((k, _frozen(before[MODEL + k])) for k in g["keys"])
        top_values = tuple((k, _frozen(top_flat[MODEL + k])) for k in g["keys"])
        undo = Undo(tuple(g["steps"]), g["before"], top, changes, top_values)
        refused = _schema_refusal(top, undo.overrides(), ladder)
        undos.append(Undo(undo.steps, undo.before, top, changes, top_values, refused))
    return tuple(undos), tuple(skipped)


def loo_jobs(seeds: list[int], top: str | None = None, with_ladder: bool = True,
             only: list[str] | None = None, ladder: str | None = None
             ) -> list[tuple[str, str, list[str], int]]:
    """(run name, rung, overrides, seed) for every job of the leave-one-out sweep, seed by seed:
    the top, its variants (``only``: these changes, by name), then the ladder rungs the changes
    are measured between (``with_ladder``)."""
    undos, _ = leave_one_out(top, ladder)
    top = undos[0].top
    if only:
        unknown = set(only) - {u.name for u in undos}
        if unknown:
            raise ValueError(f"unknown change(s) {', '.join(sorted(unknown))}; the changes are "
                             f"{', '.join(u.name for u in undos)}")
        undos = tuple(u for u in undos if u.name in only)
    ladder_rungs: list[str] = []
    for u in undos:
        ladder_rungs += [r for r in (u.before, u.after) if r not in ladder_rungs and r != top]
    out = []
    for seed in seeds:
        out.append((top, top, [], seed))
        out += [(u.name, top, u.overrides(), seed) for u in undos if not u.refused]
        if with_ladder:
            out += [(r, r, [], seed) for r in ladder_rungs]
    return out


def match_undo(variant: tuple[tuple[str, Any], ...], undos) -> Undo | None:
    """The undo whose changes are exactly ``variant`` (a run's :func:`variant_of`), if any."""
    for undo in undos:
        if dict(variant) == dict(undo.changes):
            return undo
    return None
