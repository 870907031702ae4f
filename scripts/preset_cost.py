"""Step cost of budgets against a reference budget, measured in the same run.

    python scripts/preset_cost.py --rungs resnet50,micro \
        --setting "preset=imagenette_cpu" --setting "preset=imagenette_cpu64"

Each ``--setting`` is a space-separated list of Hydra overrides; the first is the reference.
For each rung and setting: the model at that setting's image size, width and stem, one
training step (forward, backward, AdamW) on a random batch, the settings taking turns over
``--repeats`` rounds, timed in process CPU time with one compute thread (steady on a shared
machine). Prints the median ms per step and the ratio to the reference; ``--json`` writes them.
It measures the model's step only: decoding and augmentation are not in it
(ladder/bench/preset_cost.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # without `pip install -e .`

from ladder.bench.preset_cost import step_cost  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rungs", default="resnet50,micro")
    parser.add_argument("--setting", action="append", required=True,
                        help="Hydra overrides (space-separated); the first is the reference")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    step_cost(args.rungs.split(","), args.setting, batch=args.batch, repeats=args.repeats,
              json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
