"""Step cost of budgets against a reference budget, measured in the same run.

    python scripts/preset_cost.py --rungs resnet50,micro \
        --setting "preset=imagenette_cpu" --setting "preset=imagenette_cpu64"

Each ``--setting`` is a space-separated list of Hydra overrides; the first is the reference.
For each rung and setting: the model at that setting's image size, width and stem, one
training step (forward, backward, AdamW) on a random batch, the settings taking turns over
``--repeats`` rounds, timed in process CPU time with one compute thread (steady on a shared
machine). Prints the median ms per step and the ratio to the reference; ``--json`` writes them.
It measures the model's step only: decoding and augmentation are not in it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ladder.ladders.compose import compose_config  # noqa: E402
from ladder.train.subject import subject_of  # noqa: E402


def _step(model, opt, x, y) -> None:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", default="resnet50,micro")
    parser.add_argument("--setting", action="append", required=True,
                        help="Hydra overrides (space-separated); the first is the reference")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = {}
    for rung in args.rungs.split(","):
        for setting in args.setting:
            cfg = OmegaConf.to_object(compose_config(
                rung, ["data.root=unused", "logger=none", *setting.split()]))
            model = subject_of(cfg).build()
            size = cfg.data.image_size
            cases[(rung, setting)] = (model, torch.optim.AdamW(model.parameters(), 1e-3),
                                      torch.randn(args.batch, 3, size, size),
                                      torch.randint(0, cfg.model.num_classes, (args.batch,)))
    times: dict = {key: [] for key in cases}
    for case in cases.values():
        _step(*case)  # warm-up
    for _ in range(args.repeats):
        for key, case in cases.items():
            t0 = time.process_time()
            _step(*case)
            times[key].append(time.process_time() - t0)
    rows = []
    for rung in args.rungs.split(","):
        ref = statistics.median(times[(rung, args.setting[0])])
        for setting in args.setting:
            med = statistics.median(times[(rung, setting)])
            rows.append({"rung": rung, "setting": setting, "ms_per_step": round(1000 * med, 1),
                         "ratio_to_reference": round(med / ref, 3)})
            print(f"{rung:10s} {setting:40s} {1000 * med:8.0f} ms/step  x{med / ref:.2f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": args.batch, "repeats": args.repeats,
                                               "threads": 1, "clock": "process CPU time",
                                               "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
