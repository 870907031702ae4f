"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests (tiny widths,
a few steps, no W&B, tmp dirs), like lightning-hydra-template's conftest."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Never talk to W&B's servers from tests.
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A session-wide cache (the small demo dataset is generated here once)."""
    path = tmp_path_factory.mktemp("ladder-cache")
    os.environ["LADDER_CACHE"] = str(path)
    return path


def tiny_overrides(cache_dir: Path) -> list[str]:
    """Hydra overrides that make any rung train in about a second on a CPU."""
    return [
        "logger=none",
        f"data.root={cache_dir}",
        "data.train_per_class=8", "data.val_per_class=3",
        "data.num_workers=0", "data.image_size=32",
        "model.width_multiplier=0.0625", "model.stem_stride=2",
        "trainer.batch_size=8", "trainer.global_batch=16",
        "trainer.epochs=1", "trainer.max_steps_per_epoch=2",
        "trainer.by_recipe.torchvision.epochs=1",  # the presets give this recipe its own epochs
        "trainer.log_every=1", "trainer.progress=false",
    ]


@pytest.fixture
def tiny(cache_dir):
    """compose(rung, *extra) -> typed TrainConfig for a tiny run."""
    from ladder.compose import compose_config

    def make(rung: str = "micro", *extra: str):
        cfg = compose_config(rung, tiny_overrides(cache_dir) + list(extra))
        return OmegaConf.to_object(cfg)

    return make


def write_image_folder(root: Path, classes=("a", "b", "c"), train=6, val=3, size=24) -> Path:
    """A real ImageNet-layout folder of JPEGs, written by the test."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for i, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                arr = rng.integers(0, 60, (size, size, 3)) + 60 * i
                Image.fromarray(arr.astype("uint8")).save(d / f"{j}.jpg")
    return root
