"""Figures of the experiments beyond the ladder: leave-one-out and norm x batch size.

Like the roadmap figure: Agg canvas (no pyplot state), measured values as points with
intervals, every seed visible, axes that are not cut (accuracy from 0 to 100; changes on an
axis that includes 0 and every interval).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ladder.report.figure import fit_title
from ladder.report.table import GroupInfo


def _figure(width: float, height: float, ncols: int = 1, **kw):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, **kw)
    return fig, axes


_TOP, _LADDER, _PAPER = "#4c72b0", "#dd8452", "#8e44ad"


def loo_figure(rows, info: GroupInfo, metric: str = "top1"):
    """One row per change undone at the top: its value at the top (circle) and on the ladder
    (square), each with its 95% interval, on one axis through 0; the paper's value on the
    ladder (diamond) shares it on ImageNet and gets its own panel elsewhere."""
    from matplotlib.lines import Line2D

    n = len(rows)
    two = not info.imagenet
    fig, axes = _figure(12.5 if two else 9.5, 1.9 + 0.42 * n, 2 if two else 1, sharey=True,
                        **({"width_ratios": [2.6, 1]} if two else {}))
    ax, axp = (axes if two else (axes, axes))
    ends = [0.0]
    for row in rows:
        y = row.index
        if row.undo.refused:
            ax.text(0.01, y, "refused by the schema (not run)", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8.5, style="italic", color="#c0392b")
        elif row.at_top.delta is None and row.on_ladder.delta is None:
            ax.text(0.01, y, "\u2014 not run", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8.5, style="italic", color="#777777")
        for value, dy, color, marker, face in ((row.at_top, -0.14, _TOP, "o", _TOP),
                                                (row.on_ladder, 0.14, _LADDER, "s", "white")):
            if value.delta is None or (row.undo.refused and value is row.at_top):
                continue
            lo_hi = value.ci
            err = None if lo_hi is None else [[value.delta - lo_hi[0]], [lo_hi[1] - value.delta]]
            ax.errorbar(value.delta, y + dy, xerr=err, fmt=marker, color=color,
                        markerfacecolor=face, markersize=7, capsize=3, elinewidth=1, zorder=4)
            ends += [value.delta] + (list(lo_hi[:2]) if lo_hi else [])
    span = max(1.0, max(abs(e) for e in ends))
    ax.set_xlim(-1.08 * span, 1.08 * span)
    ax.axvline(0, color="black", linewidth=0.8)
    paper = np.array([np.nan if r.paper is None else r.paper for r in rows])
    axp.plot(paper, np.arange(n), "D", color=_PAPER, markersize=5.5,
             markerfacecolor=_PAPER if two else "white", zorder=5)
    if two:
        pspan = max(0.5, float(np.nanmax(np.abs(paper))) if np.isfinite(paper).any() else 0.0)
        axp.set_xlim(-1.15 * pspan, 1.15 * pspan)
        axp.axvline(0, color="black", linewidth=0.8)
        ref = info.ladder.reference
        scope = (ref.metric or "").split(" ")[0]
        axp.set_title(f"paper, on the ladder ({ref.table},\n{scope + '; ' if scope else ''}own "
                      "scale)", fontsize=9.5)
        axp.set_xlabel("paper: after \u2212 before (points)")
        axp.grid(axis="x", alpha=0.3)
        axp.tick_params(axis="y", length=0)
    ax.set_yticks(np.arange(n), [r.undo.label for r in rows], fontsize=8.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(f"value of the change in {metric} (points): with it \u2212 without it, 95% "
                  f"Welch interval; axis through 0, not cut")
    ax.set_title(f"measured on {info.dataset}", fontsize=9.5)
    fig.suptitle(fit_title(fig, f"Leave-one-out at {rows[0].undo.top} vs the ladder: "
                                f"{info.title()}"), fontsize=11)
    handles = [Line2D([], [], marker="o", color=_TOP, linestyle="none",
                      label="at the top: top \u2212 top without it"),
               Line2D([], [], marker="s", color=_LADDER, markerfacecolor="white",
                      linestyle="none", label="on the ladder: after \u2212 before its step"),
               Line2D([], [], marker="D", color=_PAPER, linestyle="none",
                      label="paper, on the ladder")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def normbatch_figure(table, info: GroupInfo, metric: str = "top1"):
    """Accuracy against batch size, one line per norm: each cell's mean with +-1 std, every
    seed as a dot, on a 0-100 axis."""
    from matplotlib.lines import Line2D

    fig, ax = _figure(7.5, 4.8)
    batches = table.batches
    x = np.arange(len(batches))
    colors = {"layernorm": _TOP, "batchnorm": _LADDER}
    handles = []
    for k, norm in enumerate(table.norms):
        color = colors.get(norm, f"C{k}")
        means = []
        for xi, b in zip(x, batches):
            vals = table.cells.get((norm, b), [])
            off = (k - (len(table.norms) - 1) / 2) * 0.1
            if vals:
                ax.plot([xi + off] * len(vals), vals, "o", color=color, alpha=0.4, markersize=3.5)
                std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
                ax.errorbar(xi + off, float(np.mean(vals)), yerr=std, fmt="o", color=color,
                            markersize=8, capsize=4, zorder=4)
                left = k % 2 == 0  # first norm's labels on the left, the second's on the right
                ax.text(xi + off + (-0.07 if left else 0.07), float(np.mean(vals)),
                        f"{np.mean(vals):.1f} (n={len(vals)})", fontsize=7.5, va="center",
                        ha="right" if left else "left", color=color)
            means.append(float(np.mean(vals)) if vals else np.nan)
        ax.plot(x + (k - (len(table.norms) - 1) / 2) * 0.1, means, "-", color=color, alpha=0.7)
        handles.append(Line2D([], [], marker="o", color=color, label=norm))
    ax.set_xticks(x, [f"batch {b}\nlr {table.lrs.get(b, float('nan')):.2g}" for b in batches])
    ax.set_xlim(-0.5, len(batches) - 0.5)
    ax.set_ylim(0, 100)
    if table.chance is not None:
        ax.axhline(table.chance, color="#777777", linestyle=":", linewidth=1)
        handles.append(Line2D([], [], color="#777777", linestyle=":", label="chance"))
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel(f"{metric} (%), mean \u00b1 std over seeds (axis from 0, not cut)")
    ax.set_title(fit_title(fig, f"BatchNorm vs LayerNorm across batch sizes: {table.title}", 10)
                 + "\n" + fit_title(fig, info.title(), 10), fontsize=10)
    ax.legend(handles=handles, fontsize=8.5, loc="lower left")
    return fig


def budget_figure(section, metric: str = "top1"):
    """Top-1 against optimizer steps (log axis), one line per rung through its budgets: each
    budget's seed mean with +-1 std, every seed as a dot, on a 0-100 axis. Runs that record no
    optimizer steps can't be placed and are left out (budget.md counts them)."""
    from matplotlib.lines import Line2D

    fig, ax = _figure(8.0, 5.0)
    handles, drawn = [], 0
    for k, rung in enumerate(section.rungs):
        color = f"C{k % 10}"
        xs, means = [], []
        for p in section.points:
            mine = [r for r in p.runs if r.rung == rung and r.optimizer_steps is not None]
            vals = [r.metrics[metric] for r in mine]
            if not vals:
                continue
            steps = [float(r.optimizer_steps) for r in mine]
            x = float(np.mean(steps))
            ax.plot(steps, vals, "o", color=color, alpha=0.4, markersize=3.5)
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            ax.errorbar(x, float(np.mean(vals)), yerr=std, fmt="o", color=color, markersize=7,
                        capsize=4, zorder=4)
            if len(section.rungs) <= 4:
                ax.annotate(f"\u00d7{p.budget:g}", (x, float(np.mean(vals))), fontsize=7.5,
                            xytext=(5, -10), textcoords="offset points", color=color)
            xs.append(x)
            means.append(float(np.mean(vals)))
            drawn += len(vals)
        if xs:
            ax.plot(xs, means, "-", color=color, alpha=0.7)
            handles.append(Line2D([], [], marker="o", color=color, label=rung))
    if drawn:
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no run records optimizer_steps", transform=ax.transAxes,
                ha="center", va="center", style="italic", color="#777777")
    ax.set_ylim(0, 100)
    chance = next((r.num_classes for p in section.points for r in p.runs if r.num_classes), None)
    if chance:
        ax.axhline(100 / chance, color="#777777", linestyle=":", linewidth=1)
        handles.append(Line2D([], [], color="#777777", linestyle=":", label="chance"))
    ax.grid(alpha=0.3)
    ax.set_xlabel("optimizer steps (log axis); labels: the budget")
    ax.set_ylabel(f"{metric} (%), mean \u00b1 std over seeds (axis from 0, not cut)")
    ax.set_title(f"{metric} against training budget, per rung\n"
                 + fit_title(fig, section.info.title(budget=False), 10), fontsize=10)
    if handles:
        ax.legend(handles=handles, fontsize=8.5, loc="lower right")
    return fig


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=120)
