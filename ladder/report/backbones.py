"""The backbones view: timm models trained under one recipe and budget (``+sweep=backbones`` or
``scripts/sweep.py --backbones``; ladder/train/subject.py), the seed's recipe-matched comparison.

One row per backbone: top-1 mean +- std over seeds and n, parameters and GFLOPs as trained (the
run's classes and resolution), training img/s, and inference latency at batch 1 and 64 (median
over seeds of each run's median, measured on the run's device after training). Every backbone
is compared with a reference (``--reference``; default resnet50 when it was run, else the first
name) by a 95% Welch interval on the difference of the seed means. Speeds are only comparable within one device.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ladder.report.stats import verdict, welch_interval
from ladder.report.table import CHANCE_FLOOR

SCHEMA = "ladder.result/1"


@dataclass
class BackboneRuns:
    name: str
    top1: list[float] = field(default_factory=list)
    img_s: list[float] = field(default_factory=list)
    lat1: list[float] = field(default_factory=list)
    lat64: list[float] = field(default_factory=list)
    params: int | None = None
    gflops: float | None = None
    devices: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    context: tuple = ()
    num_classes: int | None = None


def load_backbone_runs(paths: Iterable[Path], metric: str = "top1") -> dict[str, BackboneRuns]:
    """Backbone runs (result.json with a ``backbone``) by name, in first-seen order."""
    runs: dict[str, BackboneRuns] = {}
    for path in sorted(paths):
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if d.get("schema") != SCHEMA or not d.get("backbone"):
            continue
        b = runs.setdefault(d["backbone"], BackboneRuns(d["backbone"]))
        if d.get("status") != "completed" or not d.get("metrics"):
            b.failed.append(f"seed {d.get('seed')}: {d.get('status')} ({d.get('error')})")
            continue
        b.top1.append(float(d["metrics"][metric]))
        b.img_s.append(float(d.get("train_img_per_s") or 0))
        lat = d.get("latency_ms") or {}
        if "1" in lat:
            b.lat1.append(float(lat["1"]))
        if "64" in lat:
            b.lat64.append(float(lat["64"]))
        b.params, b.gflops = d.get("trained_params"), d.get("trained_gflops")
        if d.get("latency_device"):
            b.devices.add(d["latency_device"])
        b.context = (d.get("dataset"), d.get("image_size"), d.get("recipe"), d.get("epochs"))
        b.num_classes = ((d.get("config") or {}).get("model") or {}).get("num_classes")
    return runs


def _mean_std(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{statistics.mean(xs):.2f} \u00b1 {statistics.stdev(xs):.2f}"


def _median(xs: list[float], fmt: str = "{:.1f}") -> str:
    return fmt.format(statistics.median(xs)) if xs else "-"


def backbones_markdown(runs: dict[str, BackboneRuns], metric: str = "top1",
                       source: str = "", reference: str | None = None) -> str:
    if not runs:
        raise SystemExit(f"roadmap: error: no backbone runs (result.json with a 'backbone') "
                         f"found in {source}")
    if reference is not None and reference not in runs:
        raise SystemExit(f"roadmap: error: --reference {reference} has no runs in {source} "
                         f"(backbones there: {', '.join(runs)})")
    name = reference or ("resnet50" if "resnet50" in runs else next(iter(runs)))
    runs = {name: runs[name], **{k: v for k, v in runs.items() if k != name}}
    first = runs[name]
    dataset, size, recipe, epochs = first.context or (None,) * 4
    lines = [
        "# Backbones under one recipe",
        "",
        f"Source: {source}. Data {dataset} at {size} px, recipe {recipe}, {epochs} epochs; "
        f"metric `metrics.{metric}` (mean \u00b1 sample std over seeds). Params and GFLOPs as "
        f"trained (this run's classes and resolution). Latency: one forward pass, median of "
        f"10 after 3 warm-up passes, on "
        + (", ".join(sorted(set().union(*(b.devices for b in runs.values())))) or "-")
        + "; speeds compare only within one device.",
        "",
        f"| backbone | n | top-1 % | vs {first.name} (95% Welch) | params (M) | GFLOPs | "
        f"train img/s | latency b1 (ms) | latency b64 (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in runs.values():
        if b is first:
            diff = "reference"
        else:
            ci = welch_interval(b.top1, first.top1)
            d = (statistics.mean(b.top1) - statistics.mean(first.top1)) if b.top1 and first.top1 \
                else None
            diff = ("-" if d is None else f"{d:+.2f}" + (
                f" [{ci[0]:+.2f}, {ci[1]:+.2f}] {verdict(ci)}" if ci else " (n<2)"))
        params = f"{b.params / 1e6:.2f}" if b.params else "-"
        gflops = f"{b.gflops:.3f}" if b.gflops is not None else "-"
        lines.append(f"| {b.name} | {len(b.top1)} | {_mean_std(b.top1)} | {diff} | {params} | "
                     f"{gflops} | {_median(b.img_s, '{:.0f}')} | {_median(b.lat1)} | "
                     f"{_median(b.lat64)} |")
    failed = [f"{b.name} {f}" for b in runs.values() for f in b.failed]
    if failed:
        lines += ["", "Runs that did not complete (not in the table): " + "; ".join(failed)]
    low = [f"{b.name} ({statistics.mean(b.top1):.1f}%)" for b in runs.values()
           if b.top1 and b.num_classes
           and statistics.mean(b.top1) < CHANCE_FLOOR * 100 / b.num_classes]
    if low:
        lines += ["", f"**Did not learn on this budget** (mean top-1 under {CHANCE_FLOOR:g}x "
                      f"chance, the ladder report's floor): {', '.join(low)}. A budget that leaves "
                      f"a model near chance measures the budget, not the model."]
    few = [b.name for b in runs.values() if len(b.top1) < 2]
    if few:
        lines += ["", f"Fewer than 2 seeds, no interval: {', '.join(few)}."]
    return "\n".join(lines) + "\n"


def write_backbones(folder: Path, out_dir: Path, metric: str = "top1",
                    reference: str | None = None) -> Path:
    runs = load_backbone_runs(Path(folder).rglob("result.json"), metric)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "backbones.md"
    path.write_text(backbones_markdown(runs, metric, str(folder), reference))
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="The backbones table from a folder of runs.")
    parser.add_argument("folder", type=Path, help="e.g. multirun/demo-backbones")
    parser.add_argument("--out", type=Path, default=None, help="default: FOLDER")
    parser.add_argument("--metric", default="top1")
    parser.add_argument("--reference", default=None, help="the backbone the others are compared "
                        "with (default: resnet50 when run, else the first)")
    args = parser.parse_args(argv)
    out = args.out or args.folder
    path = write_backbones(args.folder, out, args.metric, args.reference)
    print(path.read_text(), end="")
    print(f"roadmap: wrote {path}")


if __name__ == "__main__":
    main()
