"""The norm x batch size view (the textbook's "BatchNorm versus LayerNorm Sensitivity" exercise): a rung's BatchNorm and LayerNorm
variants at several batch sizes, everything else fixed, as a norms x batches table of mean +-
std (n) with the BatchNorm - LayerNorm difference per batch (95% Welch interval).

Runs are placed by their config: the rung, ``model.norm`` and the effective batch; any other
architectural difference from the rung makes a separate table.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ladder.report.load import RunResult
from ladder.report.stats import verdict, welch_interval
from ladder.report.table import GroupInfo, _latest_per_seed, ladder_column, ladder_field
from ladder.ladders.rungs import DEFAULT_LADDER
from ladder.ladders.variants import rung_axes

NORM_ORDER = ("layernorm", "batchnorm")
NORM_NAMES = {"layernorm": "LayerNorm", "batchnorm": "BatchNorm"}


@dataclass
class NormBatchTable:
    """One rung's cells: (norm, batch) -> the seeds' values."""

    rung: str
    base: tuple[tuple[str, Any], ...]  # the architectural difference from the rung, norm aside
    cells: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    seeds: dict[tuple[str, int], list[int | None]] = field(default_factory=dict)
    failed: dict[tuple[str, int], int] = field(default_factory=dict)
    lrs: dict[int, float] = field(default_factory=dict)  # peak lr per batch
    epochs: set[int] = field(default_factory=set)
    chance: float | None = None

    @property
    def norms(self) -> list[str]:
        present = {n for n, _ in self.cells}
        return [n for n in NORM_ORDER if n in present] + sorted(present - set(NORM_ORDER))

    @property
    def batches(self) -> list[int]:
        return sorted({b for _, b in self.cells}, reverse=True)

    @property
    def title(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.base)
        return f"{self.rung}" + (f" ({extra})" if extra else "")

    def difference(self, batch: int) -> tuple[float | None, tuple[float, float, int] | None]:
        """BatchNorm - LayerNorm at one batch: (mean difference, 95% interval)."""
        bn, ln = self.cells.get(("batchnorm", batch), []), self.cells.get(("layernorm", batch), [])
        if not bn or not ln:
            return None, None
        return float(np.mean(bn) - np.mean(ln)), welch_interval(bn, ln)

    def drop(self, norm: str) -> tuple[float | None, tuple[float, float, int] | None]:
        """Smallest batch - largest batch for one norm: (mean difference, 95% interval)."""
        small = self.cells.get((norm, self.batches[-1]), [])
        large = self.cells.get((norm, self.batches[0]), [])
        if len(self.batches) < 2 or not small or not large:
            return None, None
        return float(np.mean(small) - np.mean(large)), welch_interval(small, large)


def _norm_of(run: RunResult) -> str | None:
    ladder = None if run.ladder == DEFAULT_LADDER else run.ladder
    return run.model.get("norm") or dict(rung_axes(run.rung, ladder)).get("norm")


def build_normbatch(runs: list[RunResult], metric: str = "top1") -> list[NormBatchTable]:
    """The tables of one group: one per (rung, other difference) run at two or more batches."""
    tables: dict[tuple, NormBatchTable] = {}

    def table(r: RunResult) -> NormBatchTable:
        base = tuple((k, v) for k, v in r.variant if k != "norm")
        return tables.setdefault((r.rung, base), NormBatchTable(r.rung, base))

    for r in runs:
        if r.status != "completed" and r.batch is not None:
            t = table(r)
            key = (_norm_of(r), r.batch)
            t.failed[key] = t.failed.get(key, 0) + 1
    for r in sorted(_latest_per_seed(runs, by_batch=True), key=lambda r: r.seed or 0):
        if r.metrics.get(metric) is None or r.batch is None:
            continue
        t = table(r)
        key = (_norm_of(r), r.batch)
        t.cells.setdefault(key, []).append(r.metrics[metric])
        t.seeds.setdefault(key, []).append(r.seed)
        if r.lr is not None:
            t.lrs[r.batch] = r.lr
        if r.epochs:
            t.epochs.add(r.epochs)
        if r.num_classes:
            t.chance = 100 / r.num_classes
    return [t for t in tables.values() if len(t.batches) >= 2]


def _f(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "\u2014"
    return format(x, "+.2f").replace("-", "\u2212") if sign else f"{x:.2f}"


def _diff(d: float | None, ci) -> str:
    if d is None:
        return "\u2014"
    s = _f(d, True)
    return s + (f" [{_f(ci[0], True)}, {_f(ci[1], True)}] {verdict(ci)}" if ci else " (n<2)")


def markdown(t: NormBatchTable, metric: str) -> str:
    head = f"| {metric}: mean \u00b1 std (n) | " + " | ".join(f"batch {b}" for b in t.batches)
    lines = [head + " |", "|---|" + "---|" * len(t.batches)]
    for norm in t.norms:
        cells = []
        for b in t.batches:
            vals = t.cells.get((norm, b), [])
            s = (f"{np.mean(vals):.2f} \u00b1 {_f(np.std(vals, ddof=1) if len(vals) > 1 else None)}"
                 f" (n={len(vals)})" if vals else "\u2014")
            if t.failed.get((norm, b)):
                s += f" ({t.failed[(norm, b)]} failed)"
            cells.append(s)
        lines.append(f"| {NORM_NAMES.get(norm, norm)} | " + " | ".join(cells) + " |")
    if {"batchnorm", "layernorm"} <= set(t.norms):
        lines.append("| BatchNorm \u2212 LayerNorm [95% CI] | "
                     + " | ".join(_diff(*t.difference(b)) for b in t.batches) + " |")
    lines.append("| peak lr (same rule for both norms) | "
                 + " | ".join(f"{t.lrs[b]:.3g}" if b in t.lrs else "\u2014" for b in t.batches)
                 + " |")
    epochs = ", ".join(map(str, sorted(t.epochs))) or "?"
    ratio = t.batches[0] // t.batches[-1] if len(t.batches) > 1 else 1
    lines += ["", f"Every cell trains {epochs} epoch(s); at a fixed number of epochs batch "
              f"{t.batches[-1]} takes {ratio}\u00d7 the optimizer steps of batch {t.batches[0]}."]
    return "\n".join(lines)


def findings(t: NormBatchTable) -> list[str]:
    out = []
    for norm in t.norms:
        d, ci = t.drop(norm)
        if d is not None:
            out.append(f"{NORM_NAMES.get(norm, norm)} from batch {t.batches[0]} to "
                       f"{t.batches[-1]}: {_diff(d, ci)}.")
    if {"batchnorm", "layernorm"} <= set(t.norms):
        for b in t.batches:
            d, ci = t.difference(b)
            if d is not None:
                out.append(f"At batch {b}, BatchNorm \u2212 LayerNorm is {_diff(d, ci)}.")
    if t.chance is not None:
        low = [(n, b) for (n, b), v in t.cells.items() if np.mean(v) < 2.5 * t.chance]
        if low:
            out.append("Cells under 2.5\u00d7 chance (did not learn on this budget): "
                       + ", ".join(f"{NORM_NAMES.get(n, n)} at batch {b}" for n, b in low) + ".")
    return out


CSV_FIELDS = ("dataset", "image_size", "experiment", "rung", "variant", "norm", "batch", "n",
              "seeds", "mean", "std", "n_failed", "lr", "epochs", "data_id", "budget")


def write_csv(path: Path, tables: list[NormBatchTable], info: GroupInfo) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS + ladder_field(info))
        for t in tables:
            for norm in t.norms:
                for b in t.batches:
                    vals = t.cells.get((norm, b), [])
                    w.writerow([info.key[0], info.key[1] or "", info.key[2], t.rung,
                                " ".join(f"{k}={v}" for k, v in t.base), norm, b, len(vals),
                                ";".join(str(s) for s in t.seeds.get((norm, b), [])),
                                f"{np.mean(vals):.4f}" if vals else "",
                                f"{np.std(vals, ddof=1):.4f}" if len(vals) > 1 else "",
                                t.failed.get((norm, b), 0),
                                f"{t.lrs[b]:.6g}" if b in t.lrs else "",
                                ";".join(map(str, sorted(t.epochs))),
                                info.key.data_id or "", f"{info.key.budget:g}",
                                *ladder_column(info)])
