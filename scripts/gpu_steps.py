#!/usr/bin/env python
"""The steps of scripts/gpu_check.sh and scripts/gpu_ladder.sh that are easier in Python:
record, collect, show, versions, train, round, size, cache, bench (ladder/bench/gpu_steps.py;
``--help`` lists them).

    python scripts/gpu_steps.py record --summary S --name STEP ...
    python scripts/gpu_steps.py size --round F --jobs 8 --budget 400
"""
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's ladder, installed or not

if __name__ == "__main__":
    if sys.argv[1:2] in (["record"], ["show"], ["collect"]):
        # The standard library only: ladder.bench without ladder/__init__.py (torch, timm).
        package = types.ModuleType("ladder")
        package.__path__ = [str(REPO / "ladder")]
        sys.modules["ladder"] = package
    from ladder.bench.gpu_steps import main

    sys.exit(main())
