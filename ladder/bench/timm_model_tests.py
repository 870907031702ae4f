"""timm's own model tests (tests/test_models.py of pytorch-image-models) on the ladder's models
(scripts/timm_model_tests.py).

The test file stays outside this repo: it is copied into a temporary folder together with a
conftest.py that (1) imports ``ladder`` before pytest collects the file, so the ``ladder_*``
models are in timm's registry when its parametrize lists are built, and (2) adds the ladder's
timm module (``registry``) to the two tests that select models by timm module name
(``FEAT_INTER_FILTERS``: forward_intermediates and forward_intermediates_features). Nothing else
is changed. Models are selected with ``-k`` (default: every ``ladder_`` model); extra arguments
go to pytest. Uses one thread per process (OMP_NUM_THREADS=1) unless it is set.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]

CONFTEST = '''\
import timm

import ladder  # noqa: F401  (registers ladder_* with timm before test_models.py is collected)

_list_models = timm.list_models


def _list_models_with_ladder(*args, **kwargs):
    module = kwargs.get("module")
    if module:
        modules = [module] if isinstance(module, str) else list(module)
        kwargs["module"] = modules + ["registry"]  # the ladder's timm module name
    return _list_models(*args, **kwargs)


timm.list_models = _list_models_with_ladder
'''


def run(test_file: Path | str, extra: Sequence[str] = ()) -> int:
    """pytest on a copy of ``test_file`` beside the conftest above; its exit status (2, with
    one line, when ``test_file`` is not a file)."""
    test_file, extra = Path(test_file), list(extra)
    if not test_file.is_file():
        print(f"{test_file} not found: pass the path of pytorch-image-models' "
              f"tests/test_models.py", file=sys.stderr)
        return 2
    if "-k" not in extra:
        extra = ["-k", "ladder_"] + extra
    with tempfile.TemporaryDirectory(prefix="timm-model-tests-") as tmp:
        shutil.copy(test_file, Path(tmp) / "test_models.py")
        (Path(tmp) / "conftest.py").write_text(CONFTEST)
        env = {"OMP_NUM_THREADS": "1", **os.environ,  # `ladder` without an install too
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                           os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "pytest", "test_models.py", "-p", "no:cacheprovider",
               "-W", "ignore::pytest.PytestUnknownMarkWarning", "-rA", *extra]
        return subprocess.call(cmd, cwd=tmp, env=env)
