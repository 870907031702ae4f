"""What the dataset modules share: the error they raise and where they cache data.

Both :mod:`ladder.data.loaders` and :mod:`ladder.data.imagenette` import from here, so neither imports the
other back. ``ladder.data.loaders.DataError`` stays importable (it is this class).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

STORE_FORMAT = "ladder.store/1"  # the pixel store (ladder/data/store.py)


class DataError(RuntimeError):
    """A dataset problem found before or during training; the message names the path."""


def default_cache_dir() -> Path:
    """``$LADDER_CACHE``, else ``~/.cache/ladder``: generated and downloaded data."""
    return Path(os.environ.get("LADDER_CACHE", Path.home() / ".cache" / "ladder"))


def publish(tmp: Path, dst: Path) -> Path:
    """Mark the finished folder ``tmp`` complete and move it to ``dst`` in one rename; when
    another process published ``dst`` first, drop ``tmp``. Returns ``dst``."""
    (tmp / ".complete").write_text("ok\n")
    try:
        tmp.rename(dst)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return dst
