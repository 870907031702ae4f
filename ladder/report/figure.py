"""The report's figure: the paper's Figure 2 rebuilt from the measured rows (matplotlib, Agg),
with the section's ladder's reference numbers and target lines (Swin-T on ConvNeXt's)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ladder.report.ladders import figure_scope
from ladder.report.stats import FEW, GAIN, HURT, NO_PARENT, NOISE, ROOT
from ladder.report.table import GroupInfo, Row

_COLORS = {GAIN: "#4c72b0", HURT: "#dd8452", NOISE: "#b8b8b8", FEW: "white", ROOT: "white",
           NO_PARENT: "white"}
_LEGEND = {GAIN: "gain (95% CI > 0)", HURT: "hurt (95% CI < 0)", NOISE: "within noise",
           FEW: "not judged (root, n<2, or parent not run)"}


def fit_title(fig, text: str, fontsize: float = 11) -> str:
    """``text`` broken into lines that fit the figure's width (about 0.55 em a character), so a
    long section title (a data identity, an experiment name) is not cut off at the edges."""
    chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False))


def _bar_style(verdict: str) -> dict[str, Any]:
    """Judged steps are filled; steps with no interval are an outline with a hatch."""
    if _COLORS[verdict] == "white":
        return {"facecolor": "white", "edgecolor": "#8a8a8a", "hatch": "///", "linewidth": 0.8}
    return {"facecolor": _COLORS[verdict], "edgecolor": "none"}


def make_figure(rows: list[Row], info: GroupInfo, metric: str = "top1", view: str = "full"):
    """Figure 2 rebuilt: one row per rung in ladder order, first rung at the top, measured
    top-1 as points with +-1 std intervals (and each seed as a dot) on an uncut 0-100 axis.

    On ImageNet the paper's values share the measured axis (diamonds) with the ladder's target
    lines (``targets`` in its file: Swin-T on ConvNeXt's; a ladder may have none). On any other
    dataset they go into a second panel with its own ImageNet scale, sharing the rows:
    a twin top axis would overlay two unrelated scales on the same bars, and where a diamond
    lands against a bar would then depend only on the two axis limits, inviting a comparison
    that means nothing. Side by side, the reader compares the shape of the two ladders row by
    row, which is the comparison that holds across datasets.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ladder = info.ladder
    ref = ladder.reference
    nrows = len(rows)
    y = np.arange(nrows)
    # a rung without reference numbers (a user's own step) gets no diamond
    paper = np.array([np.nan if r.rung.paper_top1 is None else r.rung.paper_top1 for r in rows])
    paper_std = np.array([r.rung.paper_top1_std or 0.0 for r in rows])
    has_paper = bool(np.isfinite(paper).any())
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
        r = row.rung
        if not two_panels and r.paper_top1 is not None:  # clear of the paper's diamond
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
        if has_paper:
            axp.set_xlim(np.nanmin(paper) - 0.35, np.nanmax(paper) + 1.25)
        for yi, p, ps in zip(y, paper, paper_std):
            if not np.isfinite(p):
                continue
            axp.text(p + max(ps, 0.08) + 0.15, yi, f"{p:.2f}", va="center", ha="left", fontsize=7.5,
                     color="#8e44ad")
        axp.set_title(f"paper, {figure_scope(ladder)}\n({ref.table}; own scale)", fontsize=9.5)
        axp.set_xlabel("paper top-1 (%)")
        axp.grid(axis="x", alpha=0.3)
        axp.tick_params(axis="y", length=0)
    else:
        for target in ladder.targets:
            ax.axvline(target.top1, color="#555555", linestyle="--", linewidth=1)
            ax.text(target.top1, -0.8, f"{target.label} {target.top1:.1f}", ha="center",
                    va="center", fontsize=8, color="#555555",
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
    fig.suptitle(fit_title(fig, f"{ladder.title} ({view} view): {info.title(ladder=False)}"),
                 fontsize=11)
    handles = [Patch(label=v, **_bar_style(k)) for k, v in _LEGEND.items()]
    handles.append(Line2D([], [], marker="D", color="#8e44ad", linestyle="none",
                          markerfacecolor="#8e44ad" if two_panels else "white",
                          label=f"paper ({ref.table})"))
    if not two_panels and ladder.targets:  # each line is labelled where it is drawn
        handles.append(Line2D([], [], color="#555555", linestyle="--",
                              label=ladder.targets[0].label if len(ladder.targets) == 1
                              else "targets"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    return fig


def plot_group(path: Path, rows: list[Row], info: GroupInfo, metric: str, view: str) -> None:
    """Render :func:`make_figure` to a PNG (Agg canvas; pyplot and its global state unused)."""
    make_figure(rows, info, metric, view).savefig(path, dpi=120)
