"""Two results for one point of a section, and whether two runs were trained alike.

A *duplicate* is two or more completed results of the same rung (and architecture variant), seed
and, in one section, the same data, image size, experiment and budget: e.g. one run trained twice
into two folders that are read together. The report never lets one replace the other silently:
it keeps the newer (file mtime, W&B creation time) and says so in one sentence that names every
file and whether their settings differ (:func:`settings_diff`).
"""
from __future__ import annotations

from typing import Any, Iterable

from ladder.report.load import RunResult, SectionKey

# Config keys that say how a run was launched or logged, not what was trained: left out when two
# runs' settings are compared. ``data.root`` too when both runs record a data id (the id says
# what was read; two copies of one folder are the same data).
IGNORED_KEYS = ("seed", "output_dir", "logger", "trainer.progress", "trainer.log_every",
                "trainer.resume", "trainer.checkpoint_every_steps", "trainer.checkpoint_epochs",
                "trainer.budget", "data.num_workers", "proxy")
# (``proxy``: the preset's per-recipe settings; what they set is recorded where it lands.)
MAX_KEYS = 4  # differing keys named in a sentence


def flat_config(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"a.b": value}``; keys flattened with '/' (W&B) become dotted, and
    W&B's ``{"value": v, "desc": ...}`` entries their value."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = prefix + str(k).replace("/", ".")
        if isinstance(v, dict) and v and set(v) <= {"value", "desc"}:
            v = v.get("value")
        if isinstance(v, dict) and v:
            out.update(flat_config(v, key + "."))
        else:
            out[key] = v
    return out


def _ignored(key: str, both_ids: bool) -> bool:
    if both_ids and (key == "data.root" or key.startswith("data.root.")):
        return True
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


def schema_defaults() -> dict[str, Any]:
    """Every config key's default in the typed schema (ladder/ladders/schema.py), dotted. A key that a
    newer version of the schema added keeps the older behaviour at its default, so a run
    recorded before the key existed trained with that value."""
    from dataclasses import MISSING, fields

    from ladder.ladders.schema import TrainConfig

    out: dict[str, Any] = {}
    for f in fields(TrainConfig):
        if f.default_factory is not MISSING:
            value = f.default_factory()
        elif f.default is not MISSING:
            value = f.default
        else:
            continue
        if hasattr(value, "__dataclass_fields__"):
            from dataclasses import asdict

            out.update(flat_config(asdict(value), f.name + "."))
        else:
            out[f.name] = value
    return out


def _other_recipe(key: str, recipes: set) -> bool:
    """A preset's setting for another recipe (``trainer.by_recipe.<name>.*`` where neither run
    trains with ``<name>``): it cannot have changed what either run trained."""
    parts = key.split(".")
    return parts[:2] == ["trainer", "by_recipe"] and len(parts) > 2 and parts[2] not in recipes


def settings_diff(a: RunResult, b: RunResult) -> list[str]:
    """The config keys (dotted, sorted) whose values differ between two runs, leaving out the
    seed, output paths, logging keys and the budget (``IGNORED_KEYS``). A key only one run
    records counts when its value is not the schema's default (:func:`schema_defaults`: a run
    from before the key existed trained with its default). Empty when the settings agree or
    when either run recorded no config (nothing to compare)."""
    if not a.config or not b.config:
        return []
    both_ids = bool(a.data_id and b.data_id)
    fa, fb = flat_config(a.config), flat_config(b.config)
    defaults, missing = schema_defaults(), object()
    recipes = {fa.get("recipe.name"), fb.get("recipe.name")}
    keys = {k for k in set(fa) | set(fb) if not _ignored(k, both_ids)
            and not _other_recipe(k, recipes)}

    def value(flat: dict, key: str) -> Any:
        return flat[key] if key in flat else defaults.get(key, missing)

    return sorted(k for k in keys if value(fa, k) != value(fb, k))


def diff_text(a: RunResult, b: RunResult, keys: list[str]) -> str:
    """``recipe.lr (0.004 vs 0.001), ...``: the first MAX_KEYS differing keys with both values."""
    fa, fb = flat_config(a.config), flat_config(b.config)
    shown = ", ".join(f"{k} ({fa.get(k)!r} vs {fb.get(k)!r})" for k in keys[:MAX_KEYS])
    more = f" and {len(keys) - MAX_KEYS} more" if len(keys) > MAX_KEYS else ""
    return shown + more


def point_key(r: RunResult, by_batch: bool = False) -> tuple:
    """What one completed result stands for in a section: rung, variant, seed (and batch)."""
    return (r.rung, r.variant, r.seed) + ((r.batch,) if by_batch else ())


def duplicates(runs: Iterable[RunResult], by_batch: bool = False) -> list[list[RunResult]]:
    """The completed results that share a :func:`point_key`, oldest first, one list per point
    with two or more."""
    points: dict[tuple, list[RunResult]] = {}
    for r in sorted((r for r in runs if r.status == "completed"), key=lambda r: r.order):
        points.setdefault(point_key(r, by_batch), []).append(r)
    return [rs for rs in points.values() if len(rs) > 1]


def _what(r: RunResult) -> str:
    variant = " ".join(f"{k}={v}" for k, v in r.variant)
    budget = f", budget {r.budget:g}" if r.budget != 1 else ""
    return f"`{r.rung}`{' ' + variant if variant else ''} seed {r.seed}{budget}"


def duplicate_sentence(rs: list[RunResult]) -> str:
    """One sentence for one duplicate point (``rs`` oldest first): both (all) files, which one
    is used, and whether their settings differ."""
    newest, others = rs[-1], rs[:-1]
    files = ", ".join(f"`{r.source}`" for r in rs)
    diffs = [(r, settings_diff(r, newest)) for r in others]
    differ = [(r, keys) for r, keys in diffs if keys]
    if differ:
        how = "; their settings differ: " + "; ".join(
            f"`{r.source}` vs the newer in {diff_text(r, newest, keys)}" for r, keys in differ)
    elif not all(r.config for r in rs):
        how = "; a result records no config, so their settings can't be compared"
    else:
        how = "; their settings are the same (seed, paths and logging aside)"
    return (f"{_what(newest)} has {len(rs)} completed results ({files}): the newest, "
            f"`{newest.source}`, is used and the other{'s' if len(others) > 1 else ''} left "
            f"out{how}.")


def duplicate_notes(runs: Iterable[RunResult], by_batch: bool = False) -> list[str]:
    """One sentence per duplicate point of a section (see :func:`duplicate_sentence`)."""
    return [duplicate_sentence(rs) for rs in duplicates(runs, by_batch)]


def same_name_note(keys: Iterable[tuple]) -> str | None:
    """One sentence when sections share a dataset name but not what was read (different data
    ids, or ids beside results that record none); None otherwise."""
    by_name: dict[str, set[str | None]] = {}
    for key in keys:
        key = SectionKey(*key)
        by_name.setdefault(key.dataset, set()).add(key.data_id)
    parts = []
    for name, ids in sorted(by_name.items()):
        if len(ids) < 2:
            continue
        named = sorted(i for i in ids if i)
        named = f"data id{'s' if len(named) > 1 else ''} " + ", ".join(f"`{i}`" for i in named)
        old = (f"; and results that record no data id (written before result.json recorded "
               f"what was read), reported under the name `{name}`" if None in ids else "")
        parts.append(f"dataset `{name}` is split into {len(ids)} sections by what was read "
                     f"({named}{old})")
    if not parts:
        return None
    return ("The sections below are split by what was read, never averaged together: "
            + "; ".join(parts) + ".")
