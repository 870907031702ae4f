"""The demo dataset: ten classes of shapes and textures, generated deterministically on first
use (no download) and cached as a class-folder JPEG dataset under ``data.root`` (default
``$LADDER_CACHE``, else ``~/.cache/ladder``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ladder.data.common import default_cache_dir, publish
from ladder.ladders.schema import DataConfig

DEMO_VERSION = "demo-v2"
DEMO_STORE_SIZE = 64  # stored resolution; transforms resize to data.image_size
DEMO_CLASSES = ("circle", "square", "triangle", "ring", "cross", "hstripes", "vstripes",
                "checker", "diamond", "dots")


def _demo_image(label: int, rng: np.random.Generator, size: int = DEMO_STORE_SIZE) -> Image.Image:
    """One image of class ``label``: a shape or texture of random colour, scale and position on
    a noisy random-colour background, blurred and noised so the task is learnable but not
    solved at once (shape, not colour, carries the class)."""
    s = size
    bg = rng.integers(0, 256, 3)
    fg = rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg.astype(int)).sum() < 200:  # keep the shape visible
        fg = rng.integers(0, 256, 3)
    # low-frequency background: a coarse random grid upsampled
    coarse = rng.normal(0, 15, (4, 4, 3)) + bg
    img = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize((s, s), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.25, 0.42) * s
    cx, cy = rng.uniform(r, s - r, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    col = tuple(int(c) for c in fg)
    name = DEMO_CLASSES[label]
    if name == "circle":
        draw.ellipse(box, fill=col)
    elif name == "square":
        draw.rectangle(box, fill=col)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
    elif name == "ring":
        draw.ellipse(box, outline=col, width=max(2, int(r / 3)))
    elif name == "cross":
        w = r / 3
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=col)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=col)
    elif name == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=col)
    elif name == "dots":
        for _ in range(int(rng.integers(4, 8))):
            x, y = rng.uniform(0, s, 2)
            d = rng.uniform(0.05, 0.09) * s
            draw.ellipse([x - d, y - d, x + d, y + d], fill=col)
    else:  # textures over a patch: stripes and checkerboard
        period = int(rng.integers(4, 9))
        patch = np.array(img)
        yy, xx = np.mgrid[0:s, 0:s]
        if name == "hstripes":
            mask = (yy // period) % 2 == 0
        elif name == "vstripes":
            mask = (xx // period) % 2 == 0
        else:
            mask = ((yy // period) + (xx // period)) % 2 == 0
        inside = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)
        patch[mask & inside] = fg
        img = Image.fromarray(patch)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.0, 0.8))))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 10, (s, s, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def ensure_demo_dataset(cfg: DataConfig) -> Path:
    """Generate the demo dataset once (deterministic) and return its ImageNet-layout root."""
    base = Path(cfg.root) if cfg.root else default_cache_dir()
    root = base / f"{DEMO_VERSION}-{cfg.train_per_class}x{cfg.val_per_class}"
    done = root / ".complete"
    if done.exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    print(f"[ladder] generating the demo dataset (10 classes, {cfg.train_per_class} train + "
          f"{cfg.val_per_class} val images per class) in {root} ...", flush=True)
    for split, per_class, seed in (("train", cfg.train_per_class, 0), ("val", cfg.val_per_class, 1)):
        for label, name in enumerate(DEMO_CLASSES):
            out = tmp / split / f"{label:02d}_{name}"
            out.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, label])
            for i in range(per_class):
                _demo_image(label, rng).save(out / f"{i:05d}.jpg", quality=90)
    return publish(tmp, root)
