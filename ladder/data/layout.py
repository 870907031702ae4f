"""Where a dataset's images are: the layouts ``data.root`` may have, recognised from the folder
itself (no flag), and the root of each data group.

* class folders: ``train/<class>/*`` and ``val/<class>/*`` (ImageNet as usually kept,
  Imagenette, any image folder);
* the ILSVRC2012 localization release (as published for the localization challenge):
  ``ILSVRC/Data/CLS-LOC/train/<wnid>/*.JPEG``; validation images in one flat folder,
  ``ILSVRC/Data/CLS-LOC/val/*.JPEG``, labelled by ``LOC_val_solution.csv`` (an image's class is
  the synset of its first box); the classes and their order from ``LOC_synset_mapping.txt``.

Anything else fails in one sentence that names what was found and what is expected.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ladder.data.common import DataError
from ladder.ladders.schema import DataConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CLASS_FOLDERS = "class-folders"
ILSVRC = "ilsvrc2012-loc"
LOC_DATA = Path("ILSVRC", "Data", "CLS-LOC")
LOC_FILES = ("LOC_synset_mapping.txt", "LOC_val_solution.csv")
LAYOUT = "expected layout: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg"
EXPECTED = ("expected train/<class>/ and val/<class>/ image folders, or the ILSVRC2012 "
            "localization release (ILSVRC/Data/CLS-LOC/train/<wnid>/ and a flat "
            "ILSVRC/Data/CLS-LOC/val/ beside LOC_val_solution.csv and LOC_synset_mapping.txt)")


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images(folder: Path) -> list[str]:
    """The image files directly in ``folder``, sorted by name (no stat calls)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if _is_image(e.name) and not e.is_dir())


@dataclass
class Source:
    """A dataset's files: its root, layout, class names (label order) and, per split, the
    (path, label) pairs in a fixed order (class by class, files by name)."""

    root: Path
    layout: str
    classes: list[str]
    splits: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def listing(self, split: str) -> str:
        """A hash of the split's file names and labels (no file is opened or stat'ed)."""
        h = hashlib.sha1(f"{self.layout}|{split}|{','.join(self.classes)}\n".encode())
        for path, label in self.splits[split]:
            h.update(f"{os.path.relpath(path, self.root)}|{label}\n".encode())
        return h.hexdigest()[:16]

    def counts(self, split: str) -> list[int]:
        out = [0] * len(self.classes)
        for _, label in self.splits[split]:
            out[label] += 1
        return out


def check_image_folder(root: Path) -> list[str]:
    """Fail early, naming the path, unless ``root`` has train/<class>/ and val/<class>/ with
    images and the same classes in both. Returns the class names."""
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist ({LAYOUT})")
    classes = None
    for split in ("train", "val"):
        d = root / split
        if not d.is_dir():
            raise DataError(f"data.root {root} has no '{split}/' folder ({LAYOUT})")
        found = sorted(p.name for p in d.iterdir() if p.is_dir())
        if not found:
            raise DataError(f"{d} has no class folders ({LAYOUT})")
        for c in found:
            if not any(_is_image(f.name) for f in (d / c).iterdir()):
                raise DataError(f"class folder {d / c} is empty: it has no image files "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
        if classes is not None and found != classes:
            only_train = sorted(set(classes) - set(found))
            only_val = sorted(set(found) - set(classes))
            raise DataError(f"train/ and val/ under {root} have different classes "
                            f"(only in train: {only_train[:5]}, only in val: {only_val[:5]})")
        classes = found
    return classes


def _class_folders(root: Path) -> Source:
    classes = check_image_folder(root)
    splits = {}
    for split in ("train", "val"):
        splits[split] = [(str(root / split / c / name), label)
                         for label, c in enumerate(classes)
                         for name in _images(root / split / c)]
    return Source(root, CLASS_FOLDERS, classes, splits)


def _ilsvrc(root: Path) -> Source:
    data = root / LOC_DATA
    missing = [str(p) for p in (data / "train", data / "val", *(root / f for f in LOC_FILES))
               if not p.exists()]
    if missing:
        raise DataError(f"data.root {root} looks like the ILSVRC2012 localization release but "
                        f"lacks {', '.join(missing)} ({EXPECTED})")
    classes = [line.split()[0] for line in
               (root / LOC_FILES[0]).read_text().splitlines() if line.strip()]
    index = {c: i for i, c in enumerate(classes)}
    train = []
    for label, c in enumerate(classes):
        folder = data / "train" / c
        if not folder.is_dir():
            raise DataError(f"class {c} of {root / LOC_FILES[0]} has no folder {folder}")
        train += [(str(folder / name), label) for name in _images(folder)]
    labels = {}
    with open(root / LOC_FILES[1], newline="") as f:
        for row in csv.DictReader(f):
            synset = row["PredictionString"].split()[0]
            if synset not in index:
                raise DataError(f"{root / LOC_FILES[1]} labels {row['ImageId']} with {synset}, "
                                f"which {root / LOC_FILES[0]} does not list")
            labels[row["ImageId"]] = index[synset]
    val = []
    for name in _images(data / "val"):
        stem = os.path.splitext(name)[0]
        if stem not in labels:
            raise DataError(f"validation image {data / 'val' / name} has no row in "
                            f"{root / LOC_FILES[1]}")
        val.append((str(data / "val" / name), labels[stem]))
    val.sort(key=lambda s: (s[1], s[0]))  # class by class, as the class-folder layout orders
    return Source(root, ILSVRC, classes, {"train": train, "val": val})


def _describe(root: Path) -> str:
    names = sorted(os.listdir(root))
    if not names:
        return "nothing in it"
    shown = [n + ("/" if (root / n).is_dir() else "") for n in names[:6]]
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return ", ".join(shown) + more


def find_source(root: Path) -> Source:
    """The dataset under ``root`` in whichever supported layout it is kept."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist ({LAYOUT})")
    if (root / "ILSVRC").is_dir() or any((root / f).exists() for f in LOC_FILES):
        return _ilsvrc(root)
    if (root / "train").is_dir() or (root / "val").is_dir():
        return _class_folders(root)
    raise DataError(f"data.root {root} holds {_describe(root)}; {EXPECTED}")


def resolve_root(data: DataConfig) -> Path:
    """The folder of an image-folder dataset (generated or downloaded first)."""
    if data.name == "demo":
        from ladder.data.demo import ensure_demo_dataset

        return ensure_demo_dataset(data)
    if data.name == "imagenette":
        from ladder.data.imagenette import imagenette_root

        return imagenette_root(data)
    if not data.root:
        raise DataError(f"data.root is not set: data={data.name} needs "
                        f"data.root=/path/with/train_and_val")
    return Path(data.root).expanduser()
