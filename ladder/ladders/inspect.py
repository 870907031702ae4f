"""Every rung's params and GFLOPs at 224x224 beside the paper's (ConvNeXt's Table 10, or the
selected ladder's reference).

    python -m ladder.inspect              # the table
    python -m ladder.inspect --json       # the same as a JSON list in ladder order
    python -m ladder.inspect --diff A B   # config keys that differ between rungs A and B
    python -m ladder.inspect --ladder bag_of_tricks    # another ladder
    python -m ladder.inspect --config-dir my_conf --ladder mine   # a ladder of your own

GFLOPs are multiply-accumulates of conv and linear layers (torchvision's resnet50: 4.09), for
the rung at the paper's scale (1000 classes, full width, stem stride 4), whatever the preset.
The networks are built on PyTorch's ``meta`` device (shapes, no weights) and counted with a
forward pass there: no full-size network is allocated, initialized or run.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from ladder.ladders import rungs
from ladder.ladders.compose import config_diff, rung_net_config
from ladder.nets.model import LadderNet, count_gmacs, count_params

# Where the paper's printed GFLOPs cannot follow from its own description (the arithmetic is in
# the README, "GFLOPs vs Table 10"): BN -> LN changes no conv or linear layer, so it keeps the
# 4.15 of fewer_norms; the paper's 4.46 is what separate downsampling gives.
KNOWN_GFLOPS_DEVIATIONS = {
    "layernorm": "norm type changes no conv/linear layer; Table 10's 4.46 is the next row's",
    "separate_downsampling": "2x2/2 convs and wider first blocks, minus the strided shortcuts: "
                             "+0.31 over 4.15 = timm's convnext_tiny; Table 10 prints 4.49",
}


def paper_scale_model(rung: str, device: str | torch.device = "meta",
                      ladder: str | None = None) -> LadderNet:
    """The rung's network at the paper's scale. On the ``meta`` device (the default) every
    parameter has its shape but no storage (the initializers see shapes only): enough to count
    parameters and, with a forward pass on a meta input, multiply-accumulates."""
    with torch.device(device):
        return LadderNet(rung_net_config(rung, ladder=ladder))


def measure(names=None, ladder: rungs.Ladder | None = None) -> list[dict]:
    """Each rung of ``ladder`` (default: ConvNeXt's) at the paper's scale: params and GMACs at
    224 px (counted on meta tensors)."""
    rows = []
    ladder = ladder or rungs.LADDER
    notes = KNOWN_GFLOPS_DEVIATIONS if ladder.name == rungs.DEFAULT_LADDER else {}
    for rung in ladder.rungs:
        if names and rung.name not in names:
            continue
        model = paper_scale_model(rung.name, ladder=ladder.name)
        gflops = count_gmacs(model, 224)
        rows.append({
            "rung": rung.name,
            "step": rung.step,
            "milestone": rung.milestone,
            "params": count_params(model),
            "gflops": round(gflops, 3),
            "paper_gflops": rung.paper_gflops,
            "paper_top1": rung.paper_top1,
            "paper_top1_std": rung.paper_top1_std,
            "note": notes.get(rung.name),
        })
    return rows


def format_table(rows: list[dict], ladder: rungs.Ladder | None = None) -> str:
    ladder = ladder or rungs.LADDER
    head = (f"{'#':>2}  {'rung':<22} {'milestone':<20} {'params':>8} {'GFLOPs':>7} "
            f"{'paper':>6} {'diff':>6}  {'paper top-1':<13}")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        if r["paper_top1"] is None:  # a rung the reference never measured
            top1, paper, diff = "-", f"{'-':>6}", f"{'-':>6}"
        else:
            top1 = f"{r['paper_top1']:.2f}" + (f" ± {r['paper_top1_std']:.2f}"
                                               if r["paper_top1_std"] is not None else "")
            paper = f"{r['paper_gflops']:>6.2f}"
            diff = f"{round(r['gflops'] - r['paper_gflops'], 2) + 0.0:>+6.2f}"
        lines.append(f"{ladder.index(r['rung']):>2}  {r['rung']:<22} {r['milestone'] or '':<20} "
                     f"{r['params'] / 1e6:>7.2f}M {r['gflops']:>7.2f} {paper} {diff}  {top1:<13}"
                     + (" *" if r["note"] else ""))
    notes = [f"  * {r['rung']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        lines += ["", "GFLOPs = GMACs of conv + linear layers at 224 px. Rows marked *:"] + notes
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladder.inspect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON list in ladder order")
    parser.add_argument("--diff", nargs=2, metavar=("A", "B"),
                        help="print the config keys that differ between rungs A and B")
    parser.add_argument("--ladder", default=rungs.DEFAULT_LADDER,
                        help="the ladder (conf/ladder/<name>.yaml; default convnext)")
    parser.add_argument("--config-dir", action="append", default=[],
                        help="a config directory of your own (its ladder/ and rung/ files); "
                             "repeatable")
    args = parser.parse_args(argv)
    rungs.set_search_path(args.config_dir)
    try:
        ladder = rungs.load_ladder(args.ladder)
        if args.diff:
            a, b = args.diff
            diff = config_diff(a, b, ladder=ladder.name)
            if args.json:
                print(json.dumps({k: list(v) for k, v in diff.items()}, indent=2, default=str))
            else:
                print(f"{'key':<32} {a:>20} -> {b}")
                for key, (va, vb) in diff.items():
                    print(f"{key:<32} {str(va):>20} -> {vb}")
            return 0
        rows = measure(ladder=ladder)
    except ValueError as err:  # unknown rung names and invalid configs: one sentence
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_table(rows, ladder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
