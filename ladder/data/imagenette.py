"""Imagenette (10 ImageNet classes) for real-image proxies: torchvision's download, cached as a
low-resolution ImageNet-layout JPEG folder.

``data=imagenette``:

* ``data.root`` set: any ImageNet-layout folder (``train/<wnid>/``, ``val/<wnid>/``), used as it
  is (e.g. an offline copy); nothing is downloaded.
* ``data.root`` unset: ``$LADDER_CACHE/imagenette-<store_size>px/`` (default
  ``~/.cache/ladder``); on first use torchvision downloads Imagenette's 160 px release into
  ``$LADDER_CACHE/imagenette/`` and every image is resized (short side to ``store_size``,
  bicubic, antialiased) and center-cropped to a square JPEG (quality 95), written to a
  temporary folder and renamed when complete, so an interrupted build is never used.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from PIL import Image

from ladder.data.common import DataError, default_cache_dir, publish
from ladder.ladders.schema import DataConfig

SOURCE = "imagenette2-160"  # torchvision's Imagenette(size="160px") folder name


def download_source(base: Path) -> Path:
    """torchvision's Imagenette 160 px release under ``base`` (downloaded when missing)."""
    src = base / SOURCE
    if (src / "train").is_dir() and (src / "val").is_dir():
        return src
    from torchvision.datasets import Imagenette

    try:
        Imagenette(str(base), split="train", size="160px", download=True)
    except Exception as err:  # offline: URLError, OSError, ... from torchvision's download
        raise DataError(
            f"could not download Imagenette into {base} ({type(err).__name__}: {err}). Offline? "
            f"Pass a local copy in ImageNet layout (train/<class>/, val/<class>/) as "
            f"data.root=/path/to/imagenette, or put torchvision's extracted {SOURCE}/ folder "
            f"under {base}") from None
    return src


def shrink_folder(src: Path, dst: Path, size: int) -> Path:
    """Write a ``size`` x ``size`` copy of the ImageNet-layout folder ``src`` to ``dst``
    (atomically: a temporary folder renamed when complete)."""
    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("train", "val"):
        for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            out = tmp / split / cls.name
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted(cls.iterdir()):
                if not f.is_file():
                    continue
                with Image.open(f) as im:
                    im = im.convert("RGB")
                    w, h = im.size
                    s = size / min(w, h)
                    im = im.resize((max(size, round(w * s)), max(size, round(h * s))),
                                   Image.BICUBIC, reducing_gap=None)
                    left, top = (im.width - size) // 2, (im.height - size) // 2
                    im.crop((left, top, left + size, top + size)).save(
                        out / (f.stem + ".JPEG"), quality=95)
    return publish(tmp, dst)


def imagenette_root(data: DataConfig) -> Path:
    """The ImageNet-layout folder to train on (see the module docstring)."""
    if data.root:
        return Path(data.root).expanduser()
    cache = default_cache_dir()
    dst = cache / f"imagenette-{data.store_size}px"
    if (dst / ".complete").exists():
        return dst
    src = download_source(cache / "imagenette")
    print(f"[ladder] writing a {data.store_size} px copy of {src} to {dst} (once)", flush=True)
    return shrink_folder(src, dst, data.store_size)
