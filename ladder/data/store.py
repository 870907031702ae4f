"""The pixel store: a dataset decoded once into uint8 images, the one format every image
dataset trains from on the device path.

A store is a folder: ``manifest.json`` (format ``ladder.store/1``; the image size, the class
names, per split the image count, the count per class, the shards and the files left out as
unreadable; the source's identity: its root, layout, a hash of its file names and labels and
one of their sizes and modification times; the resize rule of each split; the Pillow, libjpeg
and numpy versions that made the pixels) and per split ``<split>-NNNNN.npy`` shards, uint8
``[n, 3, size, size]`` in the source's order (class by class, files by name), each with its
int64 labels ``<split>-NNNNN-labels.npy`` and a marker ``<split>-NNNNN.json``. Shards are plain
``.npy`` files, memory-mapped when read.

Two kinds of store, one format:

* prepared stores (``data.store``), built once by ``python -m ladder.data.prepare``
  (ladder/data/prepare.py) at ``data.store_size``, the whole dataset for every rung: checked
  against the config when a run starts (size, classes, the source's file names); a store that
  does not match is refused in one sentence, never rebuilt or reused;
* the tensor cache of the device path (``$LADDER_CACHE/tensors/<split>-<size>px-<key>/``), one
  store per split, built on first use from an image folder with the recipe's interpolation and
  evaluation crop at ``data.image_size``, keyed by the files' names, sizes and modification
  times and by the rule: a changed file or setting is a new key.

Placement while training (prepared stores): on the device when the images fit (on CUDA: with
``data.device_reserve_mb`` to spare of the free memory; on a CPU: within ``data.device_max_mb``),
else the shards stay memory-mapped in host memory (the page cache, shared by every rank of the
machine, so no rank holds a private copy) and each batch is gathered into pinned memory and
copied to the device asynchronously. ``data.store_placement`` forces either.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ladder.data.common import STORE_FORMAT, DataError, default_cache_dir
from ladder.data.layout import Source
from ladder.ladders.schema import DataConfig

PREPARE = "python -m ladder.data.prepare"


def store_dir(data: DataConfig, root: Path | None) -> Path:
    """Where ``data.store`` is: a folder, or (``auto``, or unset for the prepare command)
    ``$LADDER_CACHE/stores/<root's name>-<store_size>px-<hash of root's real path>``."""
    if data.store and data.store != "auto":
        return Path(data.store).expanduser()
    if root is None:
        raise DataError("data.store=auto needs data.root (the store's location is derived from "
                        "it); set data.root, or data.store=<the store's folder>")
    real = os.path.realpath(Path(root).expanduser())
    tag = hashlib.sha1(real.encode()).hexdigest()[:8]
    return default_cache_dir() / "stores" / f"{Path(real).name}-{data.store_size}px-{tag}"


class StoreSplit:
    """One split of a store: its memory-mapped shards and labels."""

    def __init__(self, folder: Path, name: str, entry: dict, rule: dict):
        self.name, self.rule = name, rule
        with warnings.catch_warnings():  # read-only maps: torch warns once that it cannot write
            warnings.simplefilter("ignore", UserWarning)
            self.shards = [torch.from_numpy(np.load(folder / s["file"], mmap_mode="r"))
                           for s in entry["shards"]]
        labels = [np.load(folder / s["labels"]) for s in entry["shards"]]
        self.labels = torch.from_numpy(np.concatenate(labels) if labels else
                                       np.zeros(0, np.int64))
        self.offsets = torch.tensor([0] + list(np.cumsum([len(s) for s in self.shards])),
                                    dtype=torch.long)
        size = rule["size"]
        self.image_shape = (3, size, size)

    def __len__(self) -> int:
        return len(self.labels)

    def nbytes(self, rows: int | None = None) -> int:
        return (len(self) if rows is None else rows) * int(np.prod(self.image_shape))

    def gather(self, rows: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The images at ``rows`` (CPU int64 positions) as a CPU uint8 tensor."""
        out = torch.empty((len(rows), *self.image_shape), dtype=torch.uint8) if out is None \
            else out
        rows = rows.contiguous()
        shard = torch.searchsorted(self.offsets, rows, right=True) - 1
        for s in torch.unique(shard).tolist():
            pos = (shard == s).nonzero().squeeze(1)
            out[pos] = self.shards[s][rows[pos] - self.offsets[s]]
        return out

    def resident(self, rows: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """A copy on ``device`` of the images at ``rows`` (all when None), in pieces of 64 MB."""
        rows = torch.arange(len(self)) if rows is None else rows
        out = torch.empty((len(rows), *self.image_shape), dtype=torch.uint8, device=device)
        step = max(1, 64 * 2**20 // self.nbytes(1))
        for a in range(0, len(rows), step):
            out[a:a + step].copy_(self.gather(rows[a:a + step]))
        return out


class HostImages:
    """Images that stay in the memory-mapped shards: ``take(index)`` gathers rows into a
    pinned buffer (two, used in turn) and copies them to the device asynchronously."""

    def __init__(self, split: StoreSplit, rows: torch.Tensor | None, device: torch.device):
        self.split, self.device = split, torch.device(device)
        self.rows = rows
        self.shape = (len(split) if rows is None else len(rows), *split.image_shape)
        self._buffers: list = [None, None]
        self._events: list = [None, None]
        self._turn = 0

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        index = index.cpu()
        rows = index if self.rows is None else self.rows[index]
        if self.device.type != "cuda":
            return self.split.gather(rows)
        k, self._turn = self._turn, 1 - self._turn
        if self._events[k] is not None:
            self._events[k].synchronize()  # the copy that last read this buffer is done
        buf = self._buffers[k]
        if buf is None or len(buf) < len(rows):
            buf = self._buffers[k] = torch.empty((len(rows), *self.split.image_shape),
                                                 dtype=torch.uint8, pin_memory=True)
        x = self.split.gather(rows, buf[:len(rows)]).to(self.device, non_blocking=True)
        self._events[k] = torch.cuda.Event()
        self._events[k].record(torch.cuda.current_stream(self.device))
        return x


class Store:
    """A finished store (its manifest read, its shards mapped on demand)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.exists():
            partial = self.path.with_name(self.path.name + ".partial")
            why = (f"a prepare of it was stopped part-way ({partial}): run the prepare command "
                   f"again to finish it" if partial.exists() else
                   f"build it once with {PREPARE} data.root=<the images> "
                   f"data.store_size=<pixels> (data.store=<folder> to choose where)")
            raise DataError(f"no pixel store at {self.path}; {why}")
        self.manifest = json.loads(manifest.read_text())
        if self.manifest.get("format") != STORE_FORMAT:
            raise DataError(f"{self.path} is a {self.manifest.get('format')!r} store and this "
                            f"version reads {STORE_FORMAT}: prepare it again")
        self.size = self.manifest["size"]
        self.classes = list(self.manifest["classes"])
        self._splits: dict[str, StoreSplit] = {}

    def split(self, name: str) -> StoreSplit:
        if name not in self._splits:
            if name not in self.manifest["splits"]:
                raise DataError(f"the pixel store {self.path} has no {name!r} split")
            self._splits[name] = StoreSplit(self.path, name, self.manifest["splits"][name],
                                            self.manifest["rule"][name])
        return self._splits[name]


def source_mismatch(path: Path, manifest: dict, source: Source) -> str | None:
    """What differs between the files a store was made from and ``source``'s, or None."""
    made = manifest["source"]
    if source.classes != manifest["classes"]:
        return (f"{len(manifest['classes'])} classes then, {len(source.classes)} now"
                if len(source.classes) != len(manifest["classes"]) else "other class names")
    for split, listing in made["listing"].items():
        if split not in source.splits:
            return f"no {split} split now"
        if source.listing(split) != listing:
            return (f"{made['files'][split]:,} {split} files then, "
                    f"{len(source.splits[split]):,} now" if made["files"][split] !=
                    len(source.splits[split]) else f"other {split} file names")
    return None


def check_store(store: Store, data: DataConfig, source: Source | None) -> None:
    """Refuse, in one sentence, a prepared store that does not match the config."""
    m, where = store.manifest, store.path
    if store.size != data.store_size:
        raise DataError(f"the pixel store {where} holds {store.size} px images but "
                        f"data.store_size={data.store_size}: set data.store_size={store.size} "
                        f"or prepare a {data.store_size} px store ({PREPARE})")
    if len(store.classes) != data.num_classes:
        raise DataError(f"the pixel store {where} has {len(store.classes)} classes but "
                        f"data.num_classes={data.num_classes}: set data.num_classes="
                        f"{len(store.classes)}, or point data.store at a store of that data")
    if source is not None:
        why = source_mismatch(where, m, source)
        if why:
            raise DataError(f"the pixel store {where} was prepared from {m['source']['root']} "
                            f"and does not match data.root={source.root} ({why}): prepare "
                            f"a store of this root ({PREPARE}) or point data.store at its own")


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def placement(data: DataConfig, splits: dict[str, int], image_bytes: int, size: int,
              device: torch.device) -> tuple[bool, str]:
    """(whether the images go on the device, the check written out): ``splits`` gives the
    images of each part this rank keeps."""
    total = sum(splits.values()) * image_bytes
    parts = " + ".join(f"{n:,} {name}" for name, n in splits.items())
    need = f"{parts} images x 3 x {size} x {size} B = {_gb(total)}"
    if data.store_placement != "auto":
        on = data.store_placement == "device"
        return on, f"{need}; data.store_placement={data.store_placement}"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        reserve = data.device_reserve_mb * 2**20
        on = total + reserve <= free
        return on, (f"{need}; {_gb(total)} + {_gb(reserve)} reserve (data.device_reserve_mb) "
                    f"{'<=' if on else '>'} {_gb(free)} free on {device}")
    limit = data.device_max_mb * 2**20
    on = total <= limit
    return on, f"{need} {'<=' if on else '>'} {_gb(limit)} (data.device_max_mb) on the {device}"


def where_text(on_device: bool, device: torch.device) -> str:
    if on_device:
        return f"the whole store in {device} memory"
    copy = (", each batch gathered into pinned memory and copied asynchronously"
            if device.type == "cuda" else ", each batch gathered from them")
    return "memory-mapped shards in host memory (shared by the ranks)" + copy
