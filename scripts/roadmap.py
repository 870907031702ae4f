#!/usr/bin/env python
"""Rebuild a ladder's roadmap (table + figure) from its runs; see ladder/report/. Each run's
ladder is the one its result.json names (ConvNeXt's when it names none); ``--config-dir DIR``
finds a ladder of your own (``DIR/ladder/<name>.yaml``, ``DIR/rung/*.yaml``).

The ladder views write roadmap.md, one roadmap.csv / roadmap.png per group, and agreement.csv
(agreement with the paper: rank correlation, ends' gap, steps in the paper's direction); each
change gets a Welch and a pooled 95% interval (docs/report-statistics.md). ``--view budget``
writes budget.md / budget.csv / budget.png: the ends' gap and the agreement with the paper at
each ``trainer.budget``, and top-1 against optimizer steps per rung.

    python scripts/roadmap.py RESULTS_DIR [--out DIR] [--view full|milestones|loo|normbatch|budget]
    python scripts/roadmap.py --wandb ENTITY/PROJECT --group GROUP [--out DIR]
    python scripts/roadmap.py RESULTS_DIR --config-dir MY_CONF [--config-dir ...]
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from ladder.report import main  # noqa: E402

if __name__ == "__main__":
    main()
