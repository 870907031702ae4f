#!/usr/bin/env python
"""Training throughput of ladder rungs vs the reference models (see ladder/bench/benchmark.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ladder.bench.benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
