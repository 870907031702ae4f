"""Loading runs for the report: result.json files or a W&B group, into :class:`RunResult`.

Each run's rung is resolved in its own ladder (result.json's ``ladder``; ConvNeXt's for results
written before it was recorded), and the ladder is part of the section key, so runs of two
ladders never share a section."""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import replace, dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from ladder.ladders.rungs import DEFAULT_LADDER, LadderError, load_ladder

SCHEMA = "ladder.result/1"
RESULT_FILE = "result.json"
METRICS = ("top1", "best_top1", "ema_top1", "top5", "best_top5", "holdout_top1")


def _warn(msg: str) -> None:
    print(f"roadmap: warning: {msg}", file=sys.stderr)


class SectionKey(NamedTuple):
    """What a report section holds: runs on one dataset as read (its data id when the result
    records one, else its name), at one image size, experiment and budget, of one ladder."""

    dataset: str  # the data group's name (``data.name``)
    image_size: int | None
    experiment: str
    data_id: str | None = None  # ``<name>-<8 hex>`` from result.json's ``data``; None: not recorded
    budget: float = 1.0  # ``trainer.budget``
    ladder: str = DEFAULT_LADDER  # the ladder's name (result.json's ``ladder``)


@dataclass
class RunResult:
    """One run, as read from its result.json (or a W&B run)."""

    rung: str
    seed: int | None
    status: str
    dataset: str
    image_size: int | None
    experiment: str
    epochs: int | None = None
    recipe: str | None = None
    error: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    params: float | None = None
    gflops: float | None = None
    train_img_per_s: float | None = None
    num_classes: int | None = None  # for the chance check
    source: str = ""  # file path or W&B run path, for messages
    order: float = 0.0  # later wins among duplicates (file mtime / W&B creation time)
    model: dict[str, Any] = field(default_factory=dict)  # the run's model config ({}: unknown)
    batch: int | None = None  # the effective (global) batch of an optimizer step
    lr: float | None = None  # the peak lr after the batch rule
    sweep_group: str | None = None
    budget: float = 1.0  # trainer.budget (1.0 when not recorded); nan when not a number
    optimizer_steps: int | None = None  # None: not recorded (result.json written before it)
    data: dict[str, Any] | None = None  # what was read (id, classes, image counts); None: unknown
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    ladder: str = DEFAULT_LADDER  # the ladder the rung belongs to (result.json's ``ladder``)

    @property
    def group_key(self) -> tuple[str, int | None, str]:
        """(dataset name, image size, experiment): the section key without what was read and
        the budget (:attr:`section_key` is what the report groups by)."""
        return (self.dataset, self.image_size, self.experiment)

    @property
    def data_id(self) -> str | None:
        return str(self.data["id"]) if self.data and self.data.get("id") else None

    @property
    def section_key(self) -> SectionKey:
        """The report's grouping: the data id when recorded (a result without one is keyed by
        its dataset name and never merges with one that has an id), image size, experiment,
        budget and ladder."""
        return SectionKey(self.dataset, self.image_size, self.experiment, self.data_id,
                          self.budget, self.ladder)

    @property
    def variant(self) -> tuple[tuple[str, Any], ...]:
        """How the run's architecture differs from its rung's on the ladder's axes (empty for
        the rung itself, and for runs that recorded no model config): see ladder/ladders/variants.py."""
        if not self.model:
            return ()
        if not hasattr(self, "_variant"):
            from ladder.ladders.variants import variant_of

            ladder = None if self.ladder == DEFAULT_LADDER else self.ladder
            self._variant = variant_of(self.rung, self.model, ladder)
        return self._variant


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(x: Any) -> int | None:
    v = _num(x)
    return int(v) if v is not None else None


def _from_record(d: dict[str, Any], source: str, order: float = 0.0) -> RunResult | None:
    """A RunResult from a result.json dict; None (with a warning) when its rung is not one of
    its ladder's. A ladder the report can't load stops it with one sentence naming the file."""
    name = str(d.get("ladder") or DEFAULT_LADDER)
    try:
        ladder = load_ladder(name)
    except LadderError as err:
        raise SystemExit(f"roadmap: error: {source} names ladder {name!r}, which the report "
                         f"can't load ({str(err).rstrip('.')}); give the config directory that "
                         f"holds ladder/{name}.yaml with --config-dir DIR.") from None
    try:
        rung = ladder.resolve(str(d.get("rung"))).name
    except ValueError:
        where = "" if name == DEFAULT_LADDER else f" in ladder {name!r}"
        _warn(f"{source}: unknown rung {d.get('rung')!r}{where}, skipped")
        return None
    metrics = d.get("metrics") or {}
    status = str(d.get("status") or "completed")
    cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
    data = d.get("data") if isinstance(d.get("data"), dict) else None
    budget = 1.0 if d.get("budget") is None else _num(d.get("budget"))
    budget = math.nan if budget is None else budget
    epochs = _int(d.get("epochs"))  # new results: already times the budget
    if epochs is None:
        epochs = _config_epochs(cfg, d.get("recipe"), budget)
    classes = _int(data.get("num_classes")) if data else None
    return RunResult(
        rung=rung, seed=_int(d.get("seed")), status=status,
        dataset=str(d.get("dataset") or "unknown"), image_size=_int(d.get("image_size")),
        experiment=str(d.get("experiment") or "default"), epochs=epochs,
        recipe=d.get("recipe"), error=d.get("error"),
        metrics={k: _num(v) for k, v in metrics.items()} if isinstance(metrics, dict) else {},
        params=_num(d.get("params")), gflops=_num(d.get("gflops")),
        train_img_per_s=_num(d.get("train_img_per_s")),
        num_classes=classes or _int(_cfg_get(cfg, "data.num_classes")), source=source,
        order=order, model=_model_config(cfg), batch=_effective_batch(cfg, d.get("recipe")),
        lr=_peak_lr(cfg, d.get("recipe")), sweep_group=d.get("sweep_group"), budget=budget,
        optimizer_steps=_int(d.get("optimizer_steps")), data=data, config=cfg, ladder=name)


def bad_budget(r: RunResult) -> str | None:
    """The sentence for a result whose budget is not a number > 0 (None when it is one)."""
    if r.budget > 0:
        return None
    what = "is not a number" if math.isnan(r.budget) else f"is {r.budget:g}"
    return (f"{r.source}: its budget {what}, but a budget multiplies the epochs and must be > 0, "
            "so this run is left out of every view")


def _model_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` section of a config, nested or flattened with '.' or '/' (W&B)."""
    model = _cfg_get(cfg, "model")
    if isinstance(model, dict):
        return {k: _cfg_get(model, k) for k in model}
    out = {}
    for key in cfg:
        for sep in "./":
            if key.startswith("model" + sep):
                out[key[len("model") + 1:]] = _cfg_get(cfg, key)
    return out


def _by_recipe(cfg: dict[str, Any], recipe: Any, key: str) -> Any:
    """``trainer.by_recipe.<recipe>.<key>`` when the preset sets it, else ``trainer.<key>``."""
    own = _cfg_get(cfg, "trainer.by_recipe")
    if isinstance(own, dict) and isinstance(own.get(recipe), dict) and key in own[recipe]:
        return own[recipe][key]
    return _cfg_get(cfg, f"trainer.{key}")


def _effective_batch(cfg: dict[str, Any], recipe: Any) -> int | None:
    """Images per optimizer step, as ladder.train.optim.make_budget derives it (one rank)."""
    batch = _int(_by_recipe(cfg, recipe, "global_batch")) or _int(_cfg_get(cfg, "recipe.batch_size"))
    accum = _int(_by_recipe(cfg, recipe, "grad_accum_steps"))
    per_device = _int(_by_recipe(cfg, recipe, "batch_size"))
    if accum and per_device:
        return accum * per_device
    return batch


def _peak_lr(cfg: dict[str, Any], recipe: Any) -> float | None:
    """recipe.lr (per recipe.lr_ref_batch images) after the run's batch rule."""
    lr, ref = _num(_cfg_get(cfg, "recipe.lr")), _num(_cfg_get(cfg, "recipe.lr_ref_batch"))
    batch = _effective_batch(cfg, recipe)
    rule = _by_recipe(cfg, recipe, "lr_scaling") or "linear"
    if lr is None or not ref or not batch:
        return None
    return lr * {"linear": batch / ref, "sqrt": math.sqrt(batch / ref)}.get(rule, 1.0)


def load_results(results_dir: str | Path) -> list[RunResult]:
    """Every ``result.json`` under ``results_dir`` (recursively) with this project's schema."""
    root = Path(results_dir)
    if not root.is_dir():
        raise SystemExit(f"roadmap: error: results folder {str(root)!r} does not exist.")
    runs, other_schema = [], []
    for path in sorted(root.rglob(RESULT_FILE)):
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            _warn(f"{path}: not readable JSON ({e}), skipped")
            continue
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            other_schema.append(path)
            continue
        r = _from_record(d, str(path), order=path.stat().st_mtime)
        if r is not None:
            runs.append(r)
    if other_schema:  # warn once, not per file
        _warn(f"ignored {len(other_schema)} result.json file(s) without schema {SCHEMA!r} "
              f"(first: {other_schema[0]})")
    return runs


def _cfg_get(cfg: dict[str, Any], key: str) -> Any:
    """``data.name`` from a W&B config that is nested, or flattened with '.' or '/'."""
    for k in (key, key.replace(".", "/")):
        if k in cfg:
            v = cfg[k]
            return v.get("value", v) if isinstance(v, dict) and set(v) <= {"value", "desc"} else v
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_wandb(path: str, group: str) -> list[RunResult]:
    """The runs of one W&B group, through the public API; a one-sentence SystemExit offline."""
    try:
        import wandb

        api = wandb.Api(timeout=20)
        wruns = list(api.runs(path, filters={"group": group}))
    except Exception as e:  # noqa: BLE001 - any failure here means "can't reach W&B"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise SystemExit(
            f"roadmap: error: could not read the W&B runs of group {group!r} in {path!r} "
            f"({type(e).__name__}: {reason}); check the network and `wandb login`, or pass a "
            f"local RESULTS_DIR instead.") from None
    return [r for r in (_from_wandb_run(wr, path) for wr in wruns) if r is not None]


def _from_wandb_run(wr: Any, path: str) -> RunResult | None:
    """A RunResult from one W&B public-API run (its ``summary``, ``config`` and ``state``)."""
    summary = {k: wr.summary.get(k) for k in (*METRICS, "train_loss", "params", "gflops",
                                              "train_img_per_s", "error", "status",
                                              "optimizer_steps")}
    cfg = dict(wr.config)
    state = getattr(wr, "state", "finished")
    if state in ("running", "pending"):
        _warn(f"W&B run {wr.id} is still {state}, skipped")
        return None
    failed = state != "finished" or summary["status"] == "failed"
    rec = {
        "rung": _name(_cfg_get(cfg, "rung")), "seed": _cfg_get(cfg, "seed"),
        "ladder": _cfg_get(cfg, "ladder.name") or _name(_cfg_get(cfg, "ladder")),
        "status": "failed" if failed else "completed",
        "error": summary["error"] or (f"W&B run state {state!r}" if failed else None),
        "experiment": _name(_cfg_get(cfg, "experiment")),
        "dataset": _name(_cfg_get(cfg, "data.name")),
        "image_size": _cfg_get(cfg, "data.image_size"),
        "epochs": None,  # from the config, times the budget (_config_epochs)
        "recipe": _name(_cfg_get(cfg, "recipe")), "budget": _cfg_get(cfg, "trainer.budget"),
        "optimizer_steps": summary["optimizer_steps"],
        "metrics": {k: summary[k] for k in METRICS}, "params": summary["params"],
        "gflops": summary["gflops"], "train_img_per_s": summary["train_img_per_s"],
        "sweep_group": getattr(wr, "group", None), "config": cfg,
    }
    created = getattr(wr, "created_at", "") or ""
    return _from_record(rec, f"wandb:{path}/{wr.id}", order=_iso_order(created))


def _config_epochs(cfg: dict[str, Any], recipe: Any, budget: float = 1.0) -> int | None:
    """The run's epochs as ladder.train.optim.make_budget derives them from its config: the recipe's
    own ``trainer.by_recipe`` epochs or ``trainer.epochs``, or when null the recipe's epochs
    times ``epoch_scale`` (rounded up); then times the budget (rounded, at least 1)."""
    epochs = _int(_by_recipe(cfg, recipe, "epochs"))
    if epochs is None:
        base = _num(_cfg_get(cfg, "recipe.epochs"))
        scale = _num(_cfg_get(cfg, "trainer.epoch_scale"))
        if base is None:
            return None
        epochs = max(1, math.ceil(base * (scale if scale is not None else 1.0) - 1e-9))
    return max(1, round(epochs * budget)) if budget > 0 else epochs


def _name(v: Any) -> Any:
    """A config entry that is a whole Hydra group node (``{"name": ...}``) stands for its name."""
    return v.get("name") if isinstance(v, dict) else v


def _iso_order(s: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(s).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def section_order(key: SectionKey) -> tuple:
    """Sections in report order: the default ladder's first, then the others by name; within a
    ladder by what was read, image size, experiment and budget."""
    return (key.ladder != DEFAULT_LADDER, key.ladder, key.dataset, key.data_id or "",
            key.image_size or 0, key.experiment, key.budget)


def group_runs(runs: Iterable[RunResult], warn: bool = True) -> dict[SectionKey, list[RunResult]]:
    """Runs by :attr:`RunResult.section_key` (what was read, image size, experiment, budget,
    ladder), sorted; never mix datasets, budgets or ladders. Runs whose budget is not > 0 are
    left out, each with a warning."""
    groups: dict[SectionKey, list[RunResult]] = {}
    for r in runs:
        why = bad_budget(r)
        if why:
            if warn:
                _warn(why)
            continue
        groups.setdefault(r.section_key, []).append(r)
    _share_base_runs(groups)
    return dict(sorted(groups.items(), key=lambda kv: section_order(kv[0])))


def _share_base_runs(groups: dict[SectionKey, list[RunResult]]) -> None:
    """A ladder that ``extends`` another reuses the other's runs: a run of ConvNeXt's
    ``separate_downsampling`` is the same training as that rung under a ladder extending
    ConvNeXt's (train.py finds it completed in the same folder), so the extending ladder's
    section holds it too, next to its own rungs' runs. The base ladder keeps its section."""
    for key in list(groups):
        ladder = load_ladder(key.ladder)
        if not ladder.bases:
            continue
        own = {(r.rung, r.seed, r.variant) for r in groups[key]}
        for base in ladder.bases:
            for r in groups.get(key._replace(ladder=base), []):
                if r.rung in ladder.names and (r.rung, r.seed, r.variant) not in own:
                    groups[key].append(replace(r, ladder=key.ladder))
                    own.add((r.rung, r.seed, r.variant))


def group_slug(key: tuple) -> str:
    """A file-name part for a section: ``<dataset or data id>-<size>px-<experiment>``, plus
    ``-budget<B>`` when the budget is not 1 and ``-<ladder>`` when the ladder is not the
    default."""
    key = SectionKey(*key)
    name = key.data_id or key.dataset
    budget = "" if key.budget == 1 else f"-budget{key.budget:g}"
    ladder = "" if key.ladder == DEFAULT_LADDER else f"-{key.ladder}"
    slug = f"{name}-{key.image_size}px-{key.experiment}{budget}{ladder}"
    return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")


def same_but_budget(a: tuple, b: tuple) -> bool:
    """Whether two section keys differ at most in their budget (one section of the budget
    view)."""
    return SectionKey(*a)._replace(budget=1.0) == SectionKey(*b)._replace(budget=1.0)
