"""Run timm's own model tests (tests/test_models.py of pytorch-image-models) on the ladder.

    git clone --depth 1 https://github.com/huggingface/pytorch-image-models /tmp/pim
    python scripts/timm_model_tests.py /tmp/pim/tests/test_models.py
    python scripts/timm_model_tests.py /tmp/pim/tests/test_models.py -k "ladder_micro" -x

The test file is copied into a temporary folder beside a conftest.py that registers the ladder's
models with timm first (ladder/bench/timm_model_tests.py). Models are selected with ``-k``
(default: every ``ladder_`` model); extra arguments go to pytest. Uses one thread per process
(OMP_NUM_THREADS=1) unless it is set.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # without `pip install -e .`

from ladder.bench.timm_model_tests import run  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
