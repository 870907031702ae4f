"""Decode a dataset once into a pixel store (the format: ladder/data/store.py).

    python -m ladder.data.prepare data.root=/data/imagenet data.store_size=64
    python -m ladder.data.prepare preset=imagenet64 data.root=/data/imagenet --workers 32

Each image of each split is decoded once, in parallel over the CPU cores (``--workers``,
default: the cores this process may use), by the store's resize rule (:class:`Rule`): the
short side resized to ``floor(size / crop_pct)`` and a ``size`` x ``size`` center crop, as
timm's evaluation transform and torchvision's ``Resize`` + ``CenterCrop`` compute it. A JPEG
much larger than that is decoded at a reduced size first (Pillow's ``draft``: libjpeg's 1/2,
1/4 or 1/8 scaled decoding) while it stays at least ``draft_gap`` (2) times the resized size,
the gap Pillow's own ``thumbnail`` keeps. Prepared stores resize with bicubic filtering; the
training images are stored whole (crop 1), the validation images as the recipes evaluate them
(crop 0.875).

Shards are written as finished (atomically) into ``<store>.partial/``; a prepare that is
stopped resumes from its finished shards when run again (planned for the same files, rule,
shard size and library versions; else the partial store starts again) and produces the same
store; the folder is renamed to ``<store>`` when the manifest is written. ``data.bad_images``
applies here: ``fail`` stops naming the file, ``skip`` leaves it out, names it and records it
in the manifest.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ladder.data.common import STORE_FORMAT, DataError
from ladder.data.layout import Source
from ladder.data.store import Store, source_mismatch

INTERPOLATIONS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
                  "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS, "box": Image.BOX,
                  "hamming": Image.HAMMING}
PREPARED_INTERPOLATION = "bicubic"
PREPARED_EVAL_CROP = 0.875  # the recipes' eval_crop_ratio (224 / 256)
DRAFT_GAP = 2.0
SHARD_MB = 256
CHUNK = 64  # images per decoding task
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError,
              Image.DecompressionBombError)


@dataclass(frozen=True)
class Rule:
    """How a source image becomes a stored ``size`` x ``size`` uint8 image."""

    size: int
    interpolation: str = PREPARED_INTERPOLATION
    crop_pct: float = 1.0
    draft_gap: float = 0.0  # 0: always decode at full size

    @property
    def scale_size(self) -> int:
        return math.floor(self.size / self.crop_pct)

    def describe(self) -> dict:
        return {**asdict(self), "resize": "short side to floor(size / crop_pct), then center "
                                          "crop size x size (torchvision Resize + CenterCrop)"}


def prepared_rules(size: int, draft_gap: float = DRAFT_GAP) -> dict[str, Rule]:
    """The rule of each split of a prepared store."""
    return {"train": Rule(size, PREPARED_INTERPOLATION, 1.0, draft_gap),
            "val": Rule(size, PREPARED_INTERPOLATION, PREPARED_EVAL_CROP, draft_gap)}


def versions() -> dict:
    import PIL
    from PIL import features

    return {"Pillow": PIL.__version__, "libjpeg": features.version("jpg"),
            "numpy": np.__version__}


def decode_file(path: str, rule: Rule) -> np.ndarray:
    """The stored pixels of one file: uint8 [3, size, size]."""
    with open(path, "rb") as f:
        img = Image.open(f)
        if rule.draft_gap and img.format == "JPEG":
            want = math.ceil(rule.scale_size * rule.draft_gap)
            img.draft("RGB", (want, want))
        img.load()
    img = img.convert("RGB")  # some ImageNet images are greyscale or CMYK
    w, h = img.size
    s = rule.scale_size
    nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), INTERPOLATIONS[rule.interpolation])
    top, left = int(round((nh - rule.size) / 2.0)), int(round((nw - rule.size) / 2.0))
    img = img.crop((left, top, left + rule.size, top + rule.size))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def unreadable(path: str, err: Exception) -> DataError:
    return DataError(f"cannot read image {path}: {err} (set data.bad_images=skip to skip "
                     f"unreadable files)")


def _decode_chunk(task):
    """One decoding task: (key, samples, rule, bad_images) -> (key, images, labels, skipped)."""
    key, samples, rule, bad_images = task
    images = np.empty((len(samples), 3, rule.size, rule.size), np.uint8)
    labels, skipped = [], []
    for path, label in samples:
        try:
            images[len(labels)] = decode_file(path, rule)
        except UNREADABLE as err:
            if bad_images == "fail":
                raise unreadable(path, err) from None
            skipped.append((path, f"{type(err).__name__}: {err}"))
            continue
        labels.append(label)
    return key, images[:len(labels)], np.asarray(labels, np.int64), skipped


# ----------------------------------------------------------------------------- files
def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _write_shard(folder: Path, name: str, images: np.ndarray, labels: np.ndarray,
                 skipped: list) -> None:
    """A finished shard: its images and labels, then its marker (written last)."""
    _save_npy(folder / f"{name}.npy", images)
    _save_npy(folder / f"{name}-labels.npy", labels)
    _save_json(folder / f"{name}.json", {"images": len(labels), "skipped": skipped})


@contextmanager
def store_lock(dest: Path, wait: bool):
    """One writer per store: others wait (``wait``) or are refused in one sentence."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_name(dest.name + ".lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise DataError(f"another process is preparing {dest} (it holds "
                            f"{f.name}); wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fingerprint(samples: list[tuple[str, int]], root: Path) -> str:
    h = hashlib.sha1()
    for path, label in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- the build
def build_store(dest: Path, source: Source, rules: dict[str, Rule], workers: int = 1,
                shard_images: int | None = None, bad_images: str = "fail", threads: bool = False,
                progress: bool = False, log=print, stats: dict | None = None) -> dict:
    """Decode ``source``'s splits (the keys of ``rules``) into the store ``dest``; returns its
    manifest. ``threads``: decode in threads of this process (Pillow releases the GIL while
    it decodes and resizes), else in ``workers`` forked processes. ``stats`` gets the images
    decoded, the seconds and the CPU seconds of every process involved."""
    dest = Path(dest)
    size = {r.size for r in rules.values()}
    if len(size) != 1:
        raise ValueError(f"one image size per store, not {sorted(size)}")
    size = size.pop()
    per_shard = shard_images or max(1, SHARD_MB * 2**20 // (3 * size * size))
    fingerprints = {s: _fingerprint(source.splits[s], source.root) for s in rules}
    identity = {"format": STORE_FORMAT, "size": size, "classes": source.classes,
                "source": {"root": str(source.root), "layout": source.layout,
                           "files": {s: len(source.splits[s]) for s in rules},
                           "listing": {s: source.listing(s) for s in rules},
                           "fingerprint": fingerprints},
                "rule": {s: r.describe() for s, r in rules.items()}, "versions": versions()}
    plan = dict(identity, shard_images=per_shard)
    plan_id = hashlib.sha1(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    partial = dest.with_name(dest.name + ".partial")
    if partial.is_dir():
        try:
            planned = json.loads((partial / "plan.json").read_text())["id"]
        except (OSError, ValueError, KeyError):
            planned = None
        if planned != plan_id:
            log(f"[ladder] {partial} was planned for other files, rule or versions; "
                f"starting it again")
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    for leftover in partial.glob("*.tmp*"):  # writes cut short by the stop
        leftover.unlink()
    _save_json(partial / "plan.json", {"id": plan_id, **plan})

    tasks, shards, todo = [], {}, 0
    for split, rule in rules.items():
        samples = source.splits[split]
        for k, start in enumerate(range(0, len(samples), per_shard)):
            name = f"{split}-{k:05d}"
            shards[name] = None
            if (partial / f"{name}.json").exists():
                continue
            part = samples[start:start + per_shard]
            chunks = range(0, len(part), CHUNK)
            shards[name] = len(chunks)
            tasks += [((name, c), part[c:c + CHUNK], rule, bad_images) for c in chunks]
            todo += len(part)
    done = sum(1 for v in shards.values() if v is None)
    log(f"[ladder] decoding {todo} images of {source.root} into {dest} with {workers} "
        f"{'threads' if threads else 'processes'}" + (f" ({done} finished shards kept)"
                                                      if done else ""))
    t0, cpu0 = time.time(), _cpu_seconds()
    _run_tasks(tasks, shards, partial, workers, threads, progress, todo)
    seconds, cpu = time.time() - t0, _cpu_seconds() - cpu0
    if stats is not None:
        stats.update(images=todo, seconds=seconds, cpu_seconds=cpu, workers=workers)

    manifest = dict(identity, shard_images=per_shard, splits={})
    for split in rules:
        names = sorted(n for n in shards if n.rsplit("-", 1)[0] == split)
        entries, skipped, counts = [], [], [0] * len(source.classes)
        for name in names:
            marker = json.loads((partial / f"{name}.json").read_text())
            entries.append({"file": f"{name}.npy", "labels": f"{name}-labels.npy",
                            "images": marker["images"]})
            skipped += [[os.path.relpath(p, source.root), why] for p, why in marker["skipped"]]
            labels = np.load(partial / f"{name}-labels.npy")
            for label, n in zip(*np.unique(labels, return_counts=True)):
                counts[int(label)] += int(n)
        manifest["splits"][split] = {"images": sum(e["images"] for e in entries),
                                     "counts": counts, "shards": entries, "skipped": skipped}
        for path, why in skipped:
            print(f"[ladder] warning: skipped unreadable image {path}: {why}", file=sys.stderr,
                  flush=True)
    _save_json(partial / "manifest.json", manifest)
    (partial / "plan.json").unlink()
    os.replace(partial, dest)
    if todo:
        log(f"[ladder] {todo} images in {seconds:.1f} s, {cpu:.1f} CPU-s: "
            f"{todo / max(seconds, 1e-9):.0f} images/s with {workers} "
            f"{'threads' if threads else 'processes'}, {todo / max(cpu, 1e-9):.0f} per CPU-s")
    return manifest


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished child processes."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _run_tasks(tasks, shards, partial: Path, workers: int, threads: bool, progress: bool,
               total: int) -> None:
    """Decode the tasks in order (in parallel), writing each shard when its chunks are in."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", desc="prepare", disable=not progress or not total,
               mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr)
    pending: dict[str, list] = {}
    pool, finished = None, False
    try:
        if workers <= 1 or len(tasks) <= 1:
            results = map(_decode_chunk, tasks)
        elif threads:
            pool = ThreadPoolExecutor(workers)
            results = pool.map(_decode_chunk, tasks)
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(workers)
            results = pool.imap(_decode_chunk, tasks)
        for (name, _), images, labels, skipped in results:
            got = pending.setdefault(name, [])
            got.append((images, labels, skipped))
            bar.update(len(labels) + len(skipped))
            if len(got) == shards[name]:
                _write_shard(partial, name, np.concatenate([g[0] for g in got]),
                             np.concatenate([g[1] for g in got]), [s for g in got for s in g[2]])
                del pending[name]
        finished = True
    finally:
        bar.close()
        if isinstance(pool, ThreadPoolExecutor):
            pool.shutdown(wait=True, cancel_futures=True)
        elif pool is not None:
            pool.close() if finished else pool.terminate()
            pool.join()  # the workers are reaped: their CPU time is counted


def check_prepared(dest: Path, source: Source, rules: dict[str, Rule]) -> None:
    """For the prepare command: a finished store at ``dest`` must be of ``source`` by
    ``rules``; else one sentence (it is never overwritten)."""
    m = Store(dest).manifest
    why = source_mismatch(dest, m, source)
    if why is None and m["rule"] != {s: r.describe() for s, r in rules.items()}:
        why = "another resize rule or size"
    if why:
        raise DataError(f"{dest} already holds a store prepared from {m['source']['root']} that "
                        f"does not match this one ({why}): remove it, or choose another "
                        f"folder with data.store=<folder>")


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from ladder.data.layout import find_source, resolve_root
    from ladder.data.store import store_dir
    from ladder.ladders.compose import compose_config
    from ladder.utils.runtime import available_cores

    p = argparse.ArgumentParser(prog="python -m ladder.data.prepare", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="config overrides: data.root=..., "
                   "data.store_size=64, data.store=<folder>, data.bad_images=skip, preset=...")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: "
                   "the cores this process may use)")
    p.add_argument("--shard-images", type=int, default=None,
                   help=f"images per shard (default: {SHARD_MB} MB of pixels)")
    p.add_argument("--draft-gap", type=float, default=DRAFT_GAP,
                   help="decode JPEGs at a reduced size while at least this many times the "
                        "resized size (0: never)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        data = OmegaConf.to_object(compose_config(None, args.overrides).data)
        root = Path(data.root).expanduser() if data.root else resolve_root(data)
        source = find_source(root)
        dest = store_dir(data, root)
        rules = prepared_rules(data.store_size, args.draft_gap)
        workers = args.workers or available_cores()
        with store_lock(dest, wait=False):
            if (dest / "manifest.json").exists():
                check_prepared(dest, source, rules)
                print(f"[ladder] {dest} is prepared already (it matches data.root={root})")
                return 0
            print(f"[ladder] {source.layout} layout, {len(source.classes)} classes, "
                  + ", ".join(f"{len(source.splits[s]):,} {s}" for s in rules)
                  + f" images; {data.store_size} px; CPU: {_cpu_name()}",
                  flush=True)
            build_store(dest, source, rules, workers, args.shard_images, data.bad_images,
                        progress=not args.no_progress,
                        log=lambda m: print(m, flush=True))
    except DataError as err:
        print(f"[ladder] error: {err}", file=sys.stderr)
        return 2
    print(f"[ladder] the store is ready: train with data.store={dest} (or data.store=auto "
          f"with data.root={root} data.store_size={data.store_size})")
    return 0


def _cpu_name() -> str:
    from ladder.utils.runtime import _cpuinfo

    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo()
                  if line.startswith("model name")), "cpu")
    return f"{model}, {os.cpu_count()} cores"


if __name__ == "__main__":
    sys.exit(main())
