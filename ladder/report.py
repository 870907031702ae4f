"""Rebuild the ConvNeXt roadmap (the paper's Table 10 and Figure 2) from the ladder's runs.

Reads every run's ``result.json`` under a results folder (or the runs of one W&B group), groups
them by (dataset, image size, experiment) so that different datasets or budgets are never
averaged together, and writes for each group a table (markdown + CSV) and a figure (PNG): the
measured top-1 per rung as mean ± std over seeds, the change from the parent rung with a 95%
Welch t-interval from the seed-to-seed variation, beside the paper's numbers.

    python scripts/roadmap.py RESULTS_DIR [--out DIR] [--view full|milestones] [--metric top1]
    python scripts/roadmap.py --wandb ENTITY/PROJECT --group GROUP [--out DIR]

Only ``ladder.rungs`` is imported from the package, so the report runs without torch.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ladder.rungs import MILESTONES, RUNGS, SWIN_T_TOP1, Rung, resolve

SCHEMA = "ladder.result/1"
RESULT_FILE = "result.json"
METRICS = ("top1", "best_top1", "ema_top1", "top5", "best_top5")
VIEWS = ("full", "milestones")

# Two-sided 95% Student t quantiles t_{0.975, df}; checked against a numerical integration of
# the t density in tests/test_report.py. Between tabulated dfs the next lower df is used (wider
# interval, never narrower); above 120 the normal 1.96.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}

# Verdicts on a step's change (CSV column ``verdict``).
GAIN, HURT, NOISE, FEW = "gain", "hurt", "within noise", "n<2"
ROOT, MISSING, NO_PARENT = "root", "missing", "parent missing"


def _warn(msg: str) -> None:
    print(f"roadmap: warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- loading


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

    @property
    def group_key(self) -> tuple[str, int | None, str]:
        return (self.dataset, self.image_size, self.experiment)


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
    """A RunResult from a result.json dict; None (with a warning) when it can't be placed."""
    try:
        rung = resolve(str(d.get("rung"))).name
    except ValueError:
        _warn(f"{source}: unknown rung {d.get('rung')!r}, skipped")
        return None
    metrics = d.get("metrics") or {}
    status = str(d.get("status") or "completed")
    return RunResult(
        rung=rung, seed=_int(d.get("seed")), status=status,
        dataset=str(d.get("dataset") or "unknown"), image_size=_int(d.get("image_size")),
        experiment=str(d.get("experiment") or "default"), epochs=_int(d.get("epochs")),
        recipe=d.get("recipe"), error=d.get("error"),
        metrics={k: _num(v) for k, v in metrics.items()} if isinstance(metrics, dict) else {},
        params=_num(d.get("params")), gflops=_num(d.get("gflops")),
        train_img_per_s=_num(d.get("train_img_per_s")),
        num_classes=_int(_cfg_get(d.get("config") or {}, "data.num_classes")),
        source=source, order=order)


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
                                              "train_img_per_s", "error", "status")}
    cfg = dict(wr.config)
    state = getattr(wr, "state", "finished")
    if state in ("running", "pending"):
        _warn(f"W&B run {wr.id} is still {state}, skipped")
        return None
    failed = state != "finished" or summary["status"] == "failed"
    rec = {
        "rung": _name(_cfg_get(cfg, "rung")), "seed": _cfg_get(cfg, "seed"),
        "status": "failed" if failed else "completed",
        "error": summary["error"] or (f"W&B run state {state!r}" if failed else None),
        "experiment": _name(_cfg_get(cfg, "experiment")),
        "dataset": _name(_cfg_get(cfg, "data.name")),
        "image_size": _cfg_get(cfg, "data.image_size"),
        "epochs": _wandb_epochs(cfg),
        "recipe": _name(_cfg_get(cfg, "recipe")),
        "metrics": {k: summary[k] for k in METRICS}, "params": summary["params"],
        "gflops": summary["gflops"], "train_img_per_s": summary["train_img_per_s"],
    }
    created = getattr(wr, "created_at", "") or ""
    return _from_record(rec, f"wandb:{path}/{wr.id}", order=_iso_order(created))


def _wandb_epochs(cfg: dict[str, Any]) -> int | None:
    """``trainer.epochs``, or when that is null, the recipe's epochs times ``epoch_scale``."""
    epochs = _int(_cfg_get(cfg, "trainer.epochs"))
    if epochs is None:
        base = _num(_cfg_get(cfg, "recipe.epochs"))
        scale = _num(_cfg_get(cfg, "trainer.epoch_scale"))
        if base is not None:
            epochs = max(1, round(base * (scale if scale is not None else 1.0)))
    return epochs


def _name(v: Any) -> Any:
    """A config entry that is a whole Hydra group node (``{"name": ...}``) stands for its name."""
    return v.get("name") if isinstance(v, dict) else v


def _iso_order(s: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(s).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def group_runs(runs: Iterable[RunResult]) -> dict[tuple[str, int | None, str], list[RunResult]]:
    """Runs by (dataset, image_size, experiment), sorted; never mix datasets or budgets."""
    groups: dict[tuple[str, int | None, str], list[RunResult]] = {}
    for r in runs:
        groups.setdefault(r.group_key, []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])))


def group_slug(key: tuple[str, int | None, str]) -> str:
    dataset, size, experiment = key
    return re.sub(r"[^a-z0-9]+", "-", f"{dataset}-{size}px-{experiment}".lower()).strip("-")


# ----------------------------------------------------------------------------- statistics


def t975(df: int) -> float:
    """t_{0.975, df} from the table (df rounded down to the next tabulated value)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    tab = max(k for k in _T975 if k <= df) if df <= 120 else None
    return _T975[tab] if tab is not None else 1.96


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, int] | None:
    """95% Welch t-interval for mean(a) - mean(b); df rounded down. None when n < 2 on a side.

    Returns (low, high, df). With zero spread on both sides the interval is the point itself.
    """
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    d = float(np.mean(a) - np.mean(b))
    v1, v2 = float(np.var(a, ddof=1)) / n1, float(np.var(b, ddof=1)) / n2
    se2 = v1 + v2
    if se2 == 0.0:
        return d, d, n1 + n2 - 2
    denom = (v1 * v1 / (n1 - 1) if v1 else 0.0) + (v2 * v2 / (n2 - 1) if v2 else 0.0)
    df = max(1, math.floor(se2 * se2 / denom))
    half = t975(df) * math.sqrt(se2)
    return d - half, d + half, df


# ----------------------------------------------------------------------------- the table


@dataclass
class Row:
    """One rung of one group's table."""

    index: int
    rung: Rung
    parent: str | None  # the rung this row's change is measured against, in this view
    values: list[float]  # the metric, one per seed
    seeds: list[int | None]
    n_failed: int
    params: float | None
    gflops: float | None
    img_per_s: float | None
    paper_delta: float | None
    delta: float | None = None
    ci: tuple[float, float, int] | None = None
    verdict: str = MISSING

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    def label(self, view: str) -> str:
        """The rung's label in the figure."""
        r = self.rung
        if view == "milestones":
            return r.name if r.milestone == r.name else f"{r.milestone} ({r.name})"
        step = r.step.replace("->", "\u2192").replace(" (torchvision, 90 ep)",
                                                      " (torchvision recipe)")
        return ("\u21b3 " if r.side_branch else "") + step


def _view_rungs(view: str) -> list[tuple[Rung, str | None]]:
    """(rung, parent in this view) in ladder order."""
    if view == "full":
        return [(r, r.parent) for r in RUNGS]
    if view == "milestones":
        names = list(MILESTONES.values())
        by = {r.name: r for r in RUNGS}
        return [(by[n], names[i - 1] if i else None) for i, n in enumerate(names)]
    raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")


def _latest_per_seed(runs: list[RunResult]) -> list[RunResult]:
    """Completed runs, one per (rung, seed): a rerun replaces the earlier result."""
    best: dict[tuple[str, int | None], RunResult] = {}
    for r in sorted((r for r in runs if r.status == "completed"), key=lambda r: r.order):
        k = (r.rung, r.seed)
        if k in best:
            _warn(f"{r.rung} seed {r.seed}: several completed results, using {r.source}")
        best[k] = r
    return list(best.values())


def build_table(runs: list[RunResult], view: str = "full", metric: str = "top1") -> list[Row]:
    """One group's rows in ladder order (for ``view``), with changes and intervals."""
    done = _latest_per_seed(runs)
    by_name = {r.name: r for r in RUNGS}
    rows: dict[str, Row] = {}
    for i, (rung, parent) in enumerate(_view_rungs(view)):
        mine = sorted((r for r in done if r.rung == rung.name), key=lambda r: (r.seed is None,
                                                                              r.seed or 0))
        mine = [r for r in mine if r.metrics.get(metric) is not None]
        seeds_ok = {r.seed for r in mine}
        failed = [r for r in runs if r.rung == rung.name and r.status != "completed"
                  and r.seed not in seeds_ok]

        def avg(attr: str) -> float | None:
            vals = [getattr(r, attr) for r in mine if getattr(r, attr) is not None]
            return float(np.mean(vals)) if vals else None

        paper_delta = (rung.paper_top1 - by_name[parent].paper_top1) if parent else None
        rows[rung.name] = Row(
            index=i, rung=rung, parent=parent, values=[r.metrics[metric] for r in mine],
            seeds=[r.seed for r in mine], n_failed=len(failed), params=avg("params"),
            gflops=avg("gflops"), img_per_s=avg("train_img_per_s"), paper_delta=paper_delta)
    for row in rows.values():
        if row.n == 0:
            row.verdict = MISSING
        elif row.parent is None:
            row.verdict = ROOT
        elif rows[row.parent].n == 0:
            row.verdict = NO_PARENT
        else:
            p = rows[row.parent]
            row.delta = row.mean - p.mean
            row.ci = welch_interval(row.values, p.values)
            if row.ci is None:
                row.verdict = FEW
            elif row.ci[0] > 0:
                row.verdict = GAIN
            elif row.ci[1] < 0:
                row.verdict = HURT
            else:
                row.verdict = NOISE
    return list(rows.values())


# ----------------------------------------------------------------------------- writing


@dataclass
class GroupInfo:
    key: tuple[str, int | None, str]
    epochs: int | None  # modern-recipe epochs (max in the group)
    tv_epochs: int | None  # torchvision-recipe epochs, when different
    n_seeds: int

    @property
    def dataset(self) -> str:
        return self.key[0]

    @property
    def imagenet(self) -> bool:
        return self.dataset.lower() == "imagenet"

    def title(self) -> str:
        dataset, size, exp = self.key
        t = f"{dataset}, {size} px" if size else dataset
        if self.epochs:
            t += f", {self.epochs} epochs"
        if self.tv_epochs:
            t += f" (torchvision-recipe rung: {self.tv_epochs})"
        return t + f" \u2014 experiment {exp!r}"


def _group_info(key: tuple[str, int | None, str], runs: list[RunResult]) -> GroupInfo:
    modern = [r.epochs for r in runs if r.epochs and r.recipe != "torchvision"]
    tv = [r.epochs for r in runs if r.epochs and r.recipe == "torchvision"]
    epochs = max(modern) if modern else (max(tv) if tv else None)
    tv_epochs = max(tv) if tv and max(tv) != epochs else None
    seeds = {r.seed for r in runs if r.status == "completed"}
    return GroupInfo(key, epochs, tv_epochs, len(seeds))


def _f(x: float | None, fmt: str = ".2f", sign: bool = False) -> str:
    if x is None:
        return "\u2014"
    s = format(x, ("+" if sign else "") + fmt)
    return s.replace("-", "\u2212") if sign else s


def _change_cell(row: Row, prev: str | None) -> str:
    vs = f" vs {row.parent}" if row.parent and row.parent != prev else ""
    if row.verdict == MISSING:
        return "\u2014"
    if row.verdict == ROOT:
        return "(root)"
    if row.verdict == NO_PARENT:
        return f"{row.parent} not run"
    s = _f(row.delta, sign=True)
    if row.ci is not None:
        s += f" [{_f(row.ci[0], sign=True)}, {_f(row.ci[1], sign=True)}]"
    return s + vs


def _mark(row: Row) -> str:
    return {GAIN: "gain", HURT: "**hurt**", NOISE: "within noise", FEW: "n<2 (no interval)",
            NO_PARENT: "", ROOT: "", MISSING: "not run"}[row.verdict]


def markdown_table(rows: list[Row], metric: str, view: str = "full") -> str:
    vs = "previous milestone" if view == "milestones" else "parent"
    head = (f"| # | rung | milestone | {metric} (mean \u00b1 std, n) | change vs {vs} "
            "[95% CI] | verdict | paper top-1 | paper change | params (M) | GFLOPs | train img/s |")
    lines = [head, "|" + "---|" * 11]
    prev = None
    for row in rows:
        r = row.rung
        if row.n:
            meas = f"{row.mean:.2f} \u00b1 {_f(row.std)} (n={row.n})"
        else:
            meas = "\u2014"
        if row.n_failed:
            meas += f" ({row.n_failed} failed)"
        name = f"`{r.name}`" + (" (side branch)" if r.side_branch else "")
        paper = f"{r.paper_top1:.2f}" + (f" \u00b1 {r.paper_top1_std:.2f}"
                                         if r.paper_top1_std else "")
        lines.append(" | ".join([
            f"| {row.index}", name, r.milestone or "", meas, _change_cell(row, prev), _mark(row),
            paper, _f(row.paper_delta, sign=True),
            _f(row.params / 1e6 if row.params is not None else None, ".1f"),
            _f(row.gflops), _f(row.img_per_s, ".0f")]) + " |")
        prev = r.name
    return "\n".join(lines)


def _rung_list(rows: list[Row], with_delta: bool = True) -> str:
    parts = []
    for row in rows:
        s = f"`{row.rung.name}`"
        if with_delta and row.delta is not None:
            s += f" {_f(row.delta, sign=True)}"
            if row.ci is not None:
                s += f" [{_f(row.ci[0], sign=True)}, {_f(row.ci[1], sign=True)}]"
            if row.paper_delta is not None:
                s += f" (paper {_f(row.paper_delta, sign=True)})"
        parts.append(s)
    return ", ".join(parts)


def findings(rows: list[Row], info: GroupInfo) -> list[str]:
    """The summary: one sentence per finding."""
    by = {v: [r for r in rows if r.verdict == v] for v in (GAIN, HURT, NOISE, FEW, MISSING,
                                                            NO_PARENT)}
    out = []
    judged = sum(len(by[v]) for v in (GAIN, HURT, NOISE))
    if not judged:
        out.append("No change can be judged yet: no step has a completed parent and at least 2 "
                   "seeds on both sides.")
    elif by[GAIN]:
        out.append(f"The data supports a gain at {len(by[GAIN])} step(s), whose 95% interval "
                   f"lies above 0: {_rung_list(by[GAIN])}.")
    else:
        out.append("The data supports no step's gain: no change has a 95% interval above 0.")
    if by[HURT]:
        out.append(f"{len(by[HURT])} step(s) hurt, with the 95% interval below 0: "
                   f"{_rung_list(by[HURT])}.")
    elif judged:
        out.append("No step measurably hurts: no change has a 95% interval below 0.")
    if by[NOISE]:
        out.append(f"{len(by[NOISE])} step(s) are within seed noise (interval contains 0), so "
                   f"these runs can't tell their effect from zero: {_rung_list(by[NOISE])}.")
    if by[FEW]:
        out.append(f"{len(by[FEW])} step(s) can't be judged because a side has fewer than 2 "
                   f"seeds: {_rung_list(by[FEW])}.")
    if by[MISSING]:
        out.append(f"{len(by[MISSING])} rung(s) have no completed run: "
                   f"{_rung_list(by[MISSING], False)}.")
    if by[NO_PARENT]:
        out.append(f"{len(by[NO_PARENT])} rung(s) have results but no change, because the rung "
                   f"they are measured against was not run: {_rung_list(by[NO_PARENT], False)}.")
    resolved = [r for r in by[GAIN] + by[HURT] if r.paper_delta]
    if resolved:
        agree = [r for r in resolved if (r.delta > 0) == (r.paper_delta > 0)]
        disagree = [r for r in resolved if r not in agree]
        share = (f"all {len(agree)}" if len(agree) == len(resolved) > 1
                 else f"{len(agree)} of {len(resolved)}")
        s = (f"Of the steps whose interval excludes 0, {share} move in the same direction as "
             f"in the paper")
        s += f" and {_rung_list(disagree, False)} the opposite way." if disagree else "."
        out.append(s)
    if judged:
        out.append(f"These are {judged} separate 95% intervals with no correction for multiple "
                   "comparisons, so about one step in twenty with no real effect will still look "
                   "resolved.")
    if not info.imagenet:
        out.append(f"The paper's numbers are ImageNet-1K at 224 px and 300 epochs, so on "
                   f"{info.dataset} only the direction and relative size of each change compare, "
                   "not the accuracies themselves.")
    return out


CSV_FIELDS = ("dataset", "image_size", "experiment", "view", "index", "rung", "step",
              "milestone", "parent", "n", "seeds", "mean", "std", "delta", "ci_low", "ci_high",
              "df", "verdict", "n_failed", "paper_top1", "paper_top1_std", "paper_delta",
              "params_m", "gflops", "train_img_per_s")


def write_csv(path: Path, rows: list[Row], info: GroupInfo, view: str) -> None:
    def c(x: float | None, nd: int = 4) -> str:
        return "" if x is None else f"{x:.{nd}f}"

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        for row in rows:
            r = row.rung
            w.writerow([
                info.key[0], info.key[1] or "", info.key[2], view, row.index, r.name, r.step,
                r.milestone or "", row.parent or "", row.n,
                ";".join(str(s) for s in row.seeds), c(row.mean), c(row.std), c(row.delta),
                c(row.ci[0] if row.ci else None), c(row.ci[1] if row.ci else None),
                row.ci[2] if row.ci else "", row.verdict, row.n_failed, r.paper_top1,
                r.paper_top1_std or "", c(row.paper_delta, 2),
                c(row.params / 1e6 if row.params is not None else None, 3), c(row.gflops, 3),
                c(row.img_per_s, 1)])


_COLORS = {GAIN: "#4c72b0", HURT: "#dd8452", NOISE: "#b8b8b8", FEW: "white", ROOT: "white",
           NO_PARENT: "white"}
_LEGEND = {GAIN: "gain (95% CI > 0)", HURT: "hurt (95% CI < 0)", NOISE: "within noise",
           FEW: "not judged (root, n<2, or parent not run)"}


def _bar_style(verdict: str) -> dict[str, Any]:
    """Judged steps are filled; steps with no interval are an outline with a hatch."""
    if _COLORS[verdict] == "white":
        return {"facecolor": "white", "edgecolor": "#8a8a8a", "hatch": "///", "linewidth": 0.8}
    return {"facecolor": _COLORS[verdict], "edgecolor": "none"}


def make_figure(rows: list[Row], info: GroupInfo, metric: str = "top1", view: str = "full"):
    """Figure 2 rebuilt: one row per rung in ladder order, first rung at the top, measured
    top-1 as points with +-1 std intervals (and each seed as a dot) on an uncut 0-100 axis.

    On ImageNet the paper's values share the measured axis (diamonds) with the Swin-T line. On
    any other dataset they go into a second panel with its own ImageNet scale, sharing the rows:
    a twin top axis would overlay two unrelated scales on the same bars, and where a diamond
    lands against a bar would then depend only on the two axis limits, inviting a comparison
    that means nothing. Side by side, the reader compares the shape of the two ladders row by
    row, which is the comparison that holds across datasets.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    nrows = len(rows)
    y = np.arange(nrows)
    paper = np.array([r.rung.paper_top1 for r in rows])
    paper_std = np.array([r.rung.paper_top1_std or 0.0 for r in rows])
    measured = [r for r in rows if r.n]
    # Proxy datasets: the paper's ImageNet values get their own panel and scale (see above).
    two_panels = not info.imagenet
    height = 1.9 + 0.36 * nrows
    fig = Figure(figsize=(12.5 if two_panels else 9.5, height), layout="constrained")
    FigureCanvasAgg(fig)
    if two_panels:
        ax, axp = fig.subplots(1, 2, sharey=True, width_ratios=[2.6, 1])
    else:
        ax, axp = fig.subplots(1, 1), None

    # The measured axis is not cut: it runs from 0 to 100% top-1, so a 2-point step looks like
    # 2 points, not like a doubling (bars starting at 47% did that). Each rung is a point at its
    # mean with a +-1 std interval over seeds, and every seed's own value as a small dot.
    left, right, span = 0.0, 100.0, 100.0
    ax.set_xlim(left, right)

    for row in rows:
        yi = row.index
        if not row.n:
            txt = ("\u2014 failed" + (f" (\u00d7{row.n_failed})" if row.n_failed > 1 else "")
                   if row.n_failed else "\u2014 not run")
            ax.text(left + 0.01 * span, yi, txt, va="center", ha="left", fontsize=8.5,
                    style="italic", color="#c0392b" if row.n_failed else "#777777")
            continue
        style = _bar_style(row.verdict)
        ax.plot(row.values, [yi] * len(row.values), "o", markersize=3, color="#444444",
                alpha=0.45, zorder=3)
        ax.errorbar(row.mean, yi, xerr=row.std if row.std is not None else None, fmt="o",
                    markersize=8, markerfacecolor=style["facecolor"],
                    markeredgecolor=style.get("edgecolor", "none") if style["facecolor"] == "white"
                    else "black", markeredgewidth=0.8, ecolor="black", elinewidth=1, capsize=3,
                    zorder=4)
        end = row.mean + (row.std or 0)
        if not two_panels:  # keep the value clear of the paper's diamond on the same axis
            r = row.rung
            end = max(end, r.paper_top1 + (r.paper_top1_std or 0) + 0.02 * span)
        ax.text(min(end + 0.012 * span, 88.0), yi,
                f"{row.mean:.2f}" + (f" (n={row.n})" if row.n != info.n_seeds else ""),
                va="center", ha="left", fontsize=8)
        if row.gflops is not None:
            ax.text(left + 0.01 * span, yi, f"{row.gflops:.2f} GFLOPs", va="center",
                    ha="left", fontsize=7.5, color="#222222")

    pax = axp if two_panels else ax
    pax.errorbar(paper, y, xerr=np.where(paper_std > 0, paper_std, np.nan), fmt="D",
                 color="#8e44ad", markersize=5.5, markerfacecolor="white" if not two_panels
                 else "#8e44ad", markeredgewidth=1.3, ecolor="#8e44ad", elinewidth=1,
                 capsize=2, zorder=5)
    if two_panels:
        axp.set_xlim(paper.min() - 0.35, paper.max() + 1.25)
        for yi, p, ps in zip(y, paper, paper_std):
            axp.text(p + max(ps, 0.08) + 0.15, yi, f"{p:.2f}", va="center", ha="left", fontsize=7.5,
                     color="#8e44ad")
        axp.set_title("paper, ImageNet-1K 224 px, 300 ep\n(Table 10; own scale)", fontsize=9.5)
        axp.set_xlabel("paper top-1 (%)")
        axp.grid(axis="x", alpha=0.3)
        axp.tick_params(axis="y", length=0)
    else:
        ax.axvline(SWIN_T_TOP1, color="#555555", linestyle="--", linewidth=1)
        ax.text(SWIN_T_TOP1, -0.8, f"Swin-T {SWIN_T_TOP1:.1f}", ha="center", va="center",
                fontsize=8, color="#555555",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})

    ax.set_yticks(y, [r.label(view) for r in rows], fontsize=9)
    ax.set_ylim(nrows - 0.5, -0.5 - (0.6 if not two_panels else 0))  # first rung at the top
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    label = {"top1": "top-1", "best_top1": "best top-1", "ema_top1": "EMA top-1"}.get(metric,
                                                                                        metric)
    ax.set_xlabel(f"measured {label} (%) on {info.dataset}, mean \u00b1 std over seeds "
                  "(axis from 0, not cut)")
    ax.set_title(f"measured ({info.n_seeds} seed(s))", fontsize=9.5)
    fig.suptitle(f"ConvNeXt roadmap ({view} view): {info.title()}", fontsize=11)
    handles = [Patch(label=v, **_bar_style(k)) for k, v in _LEGEND.items()]
    handles.append(Line2D([], [], marker="D", color="#8e44ad", linestyle="none",
                          markerfacecolor="#8e44ad" if two_panels else "white",
                          label="paper (Table 10)"))
    if not two_panels:
        handles.append(Line2D([], [], color="#555555", linestyle="--", label="Swin-T"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    return fig


def plot_group(path: Path, rows: list[Row], info: GroupInfo, metric: str, view: str) -> None:
    """Render :func:`make_figure` to a PNG (Agg canvas; pyplot and its global state unused)."""
    make_figure(rows, info, metric, view).savefig(path, dpi=120)


CHANCE_FLOOR = 2.5  # a run under this multiple of chance accuracy did not learn


def below_chance_floor(runs: list[RunResult], metric: str = "top1") -> list[RunResult]:
    """Completed runs whose ``metric`` ends under CHANCE_FLOOR x chance (100 / classes)."""
    weak = [r for r in _latest_per_seed(runs) if r.num_classes and r.metrics.get(metric) is not None
            and r.metrics[metric] < CHANCE_FLOOR * 100 / r.num_classes]
    return sorted(weak, key=lambda r: (RUNGS.index(resolve(r.rung)), r.seed or 0))


def write_report(runs: list[RunResult], out_dir: str | Path, view: str = "full",
                 metric: str = "top1", source: str = "") -> list[Path]:
    """Write roadmap.md plus one (png, csv) per group into ``out_dir``; return the paths."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    groups = group_runs(runs)
    if not groups:
        raise SystemExit(f"roadmap: error: no runs with schema {SCHEMA!r} found in {source}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    several = len(groups) > 1
    n_steps = len(_view_rungs(view))
    md = [
        "# The ConvNeXt roadmap, rebuilt from the runs",
        "",
        f"Source: {source} ({len(runs)} run(s), {len(groups)} group(s)). View: {view} "
        f"({n_steps} rows). Metric: `metrics.{metric}`.",
        "",
        "Top-1 is the mean \u00b1 sample std over seeds. Each change is measured against the "
        "rung's parent (in the milestone view: the previous milestone) with a 95% Welch "
        "t-interval on the difference of the seed means (df rounded down); a step is *within "
        "noise* when its interval contains 0 and can't be judged when either side has fewer "
        "than 2 seeds. The paper columns are Table 10 of Liu et al., *A ConvNet for the 2020s* "
        "(ImageNet-1K, 3 seeds), with the change vs the same parent. Groups of different "
        "datasets or budgets are never averaged together.",
    ]
    written = []
    for key, gruns in groups.items():
        info = _group_info(key, gruns)
        rows = build_table(gruns, view, metric)
        stem = f"roadmap-{group_slug(key)}" if several else "roadmap"
        png, csv_path = out / f"{stem}.png", out / f"{stem}.csv"
        write_csv(csv_path, rows, info, view)
        plot_group(png, rows, info, metric, view)
        written += [png, csv_path]
        md += ["", f"## {info.title()}", "", f"![roadmap: {info.title()}]({png.name})", "",
               f"Table as CSV: [{csv_path.name}]({csv_path.name})", "",
               markdown_table(rows, metric, view)]
        failed = sorted((r for r in gruns if r.status != "completed"),
                        key=lambda r: (RUNGS.index(resolve(r.rung)), r.seed or 0))
        if failed:
            ok = {(r.rung, r.seed) for r in gruns if r.status == "completed"}
            md += ["", "Failed runs:", ""]
            for r in failed:
                err = (r.error or "no error recorded").strip().splitlines() or ["?"]
                later = " (a later run of this seed completed)" if (r.rung, r.seed) in ok else ""
                md.append(f"- `{r.rung}` seed {r.seed}: {err[-1][:300]}{later} "
                          f"\u2014 `{r.source}`")
        weak = below_chance_floor(gruns, metric)
        if weak:
            md += ["", f"Runs that did not learn on this budget (final {metric} under "
                   f"{CHANCE_FLOOR:g}\u00d7 chance): a budget where a rung does not learn says "
                   "nothing about the rung, so read its row and both steps next to it as "
                   "unresolved:", ""]
            md += [f"- `{r.rung}` seed {r.seed}: {r.metrics.get(metric):.2f} "
                   f"(chance {100 / r.num_classes:.1f}) \u2014 `{r.source}`" for r in weak]
        md += ["", "Findings:", ""] + [f"- {s}" for s in findings(rows, info)]
        if weak:
            md.append(f"- {len(weak)} run(s) ended under {CHANCE_FLOOR:g}\u00d7 chance (listed "
                      "above); the steps into and out of those rungs are not evidence.")
    md_path = out / "roadmap.md"
    md_path.write_text("\n".join(md) + "\n")
    return [md_path] + written


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(
        prog="roadmap.py",
        description="Rebuild the ConvNeXt roadmap (table + figure) from the ladder's runs, "
                    "beside the paper's Table 10, with seed noise.")
    p.add_argument("results_dir", nargs="?", help="folder searched recursively for result.json")
    p.add_argument("--out", help="output folder (default: RESULTS_DIR, or . with --wandb)")
    p.add_argument("--view", choices=VIEWS, default="full",
                   help="full: all 17 steps; milestones: the 7 milestones, each vs the previous")
    p.add_argument("--metric", choices=METRICS, default="top1",
                   help="which entry of the result's metrics to tabulate (default: final top1)")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from W&B instead")
    p.add_argument("--group", help="the W&B group (sweep) to read; required with --wandb")
    a = p.parse_args(argv)
    if a.wandb:
        if a.results_dir:
            p.error("give either RESULTS_DIR or --wandb, not both")
        if not a.group:
            p.error("--wandb needs --group")
        runs = load_wandb(a.wandb, a.group)
        source = f"W&B {a.wandb}, group `{a.group}`"
        out = a.out or "."
    else:
        if not a.results_dir:
            p.error("give RESULTS_DIR (or --wandb ENTITY/PROJECT --group G)")
        runs = load_results(a.results_dir)
        source = f"`{a.results_dir}`"
        out = a.out or a.results_dir
    paths = write_report(runs, out, a.view, a.metric, source)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
